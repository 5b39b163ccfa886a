// The ticket on the phone: says when the phone is offline, reloads the page when the network comes
// back (a deleted or used ticket then replaces the kept copy), keeps the screen on while it is shown,
// and sends a share link with the phone's own share sheet.
"use strict";
(function () {
  const badge = document.getElementById("offline-badge");
  function showNetwork() {
    if (badge) badge.hidden = navigator.onLine;
  }
  showNetwork();
  window.addEventListener("offline", showNetwork);
  window.addEventListener("online", () => {
    showNetwork();
    window.location.reload();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && navigator.onLine) window.location.reload();
  });

  // A kiosk camera reads a screen that stays lit: ask for the screen to stay on while the QR shows.
  if (document.getElementById("qr") && "wakeLock" in navigator) {
    navigator.wakeLock.request("screen").catch(() => {});
  }

  const send = document.getElementById("share-send");
  const address = document.getElementById("share-url");
  if (send && address) {
    send.hidden = false;
    send.addEventListener("click", () => {
      if (navigator.share) {
        navigator.share({ title: document.title, url: address.value }).catch(() => {});
      } else if (navigator.clipboard) {
        navigator.clipboard.writeText(address.value).then(() => (send.textContent = send.dataset.copied));
      } else {
        address.select();
      }
    });
  }
})();
