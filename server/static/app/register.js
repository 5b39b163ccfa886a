// Registers Portgate's service worker and tells it whose pages this browser now shows: the page's
// <meta name="portgate-cache"> names the session's offline cache ("guest" when signed out), and the
// worker deletes every other session's cache. Pages without that tag (the offline page) say nothing.
"use strict";
(function () {
  if (!("serviceWorker" in navigator)) return;
  const meta = document.querySelector('meta[name="portgate-cache"]');
  navigator.serviceWorker
    .register("/sw.js", { scope: "/" })
    .then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      if (!meta || !registration.active) return;
      const channel = new MessageChannel();
      channel.port1.onmessage = () => document.documentElement.setAttribute("data-app-session", meta.content);
      registration.active.postMessage({ type: "session", cache: meta.content }, [channel.port2]);
    })
    .catch(() => {}); // the portal works the same without the app's offline copy
})();
