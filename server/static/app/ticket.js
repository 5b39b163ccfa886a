// The ticket on the phone: says when the phone is offline; checks the ticket again when the phone is back
// online, when the app returns to the screen and when the page is the phone's kept copy, and reloads the
// page if its state changed (a deleted or used ticket then replaces the kept copy); keeps the screen on
// while the QR shows; sends a share link with the phone's own share sheet.
"use strict";
(function () {
  const badge = document.getElementById("offline-badge");
  const ticket = document.getElementById("ticket");
  let retries = 0;

  function showNetwork() {
    if (badge) badge.hidden = navigator.onLine;
  }

  // Ask the server (past the app's worker: a page's own fetch is not a navigation) what state the ticket is
  // in now. The check header gets the state alone, and a driver's link does not count it as an open.
  function checkAgain() {
    if (!ticket || !navigator.onLine) return;
    fetch(window.location.pathname, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { "X-Portgate-Check": "1" },
    })
      // Anything but the state (the sign-in page after the session ended, a page gone) reloads the page.
      .then((response) => {
        const type = response.headers.get("Content-Type") || "";
        return response.ok && type.startsWith("application/json") ? response.json() : {};
      })
      .then((answer) => {
        retries = 0;
        if (answer.status !== ticket.dataset.status) window.location.reload();
      })
      .catch(() => {
        // The phone says online before its network carries anything: try again shortly.
        if (retries++ < 5) setTimeout(checkAgain, 2000);
      });
  }

  showNetwork();
  if (ticket && ticket.dataset.kept) checkAgain(); // shown from the phone's copy: is it still so?
  window.addEventListener("offline", showNetwork);
  window.addEventListener("online", () => {
    showNetwork();
    checkAgain();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") checkAgain();
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
