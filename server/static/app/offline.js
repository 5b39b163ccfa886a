// The offline page: lists the tickets this session kept on the phone, so they open without network.
"use strict";
(function () {
  const list = document.getElementById("kept-tickets");
  if (!list || !("caches" in window)) return;
  caches
    .match("/app/current-cache", { cacheName: "portgate-meta" })
    .then((found) => (found ? found.text() : ""))
    .then((key) => (key ? caches.open("portgate-user-" + key).then((cache) => cache.keys()) : []))
    .then((requests) => {
      const label = list.dataset.label;
      requests
        .map((request) => new URL(request.url).pathname)
        .filter((path) => /^\/tickets\/\d+\/phone$/.test(path))
        .forEach((path) => {
          const item = document.createElement("li");
          const link = document.createElement("a");
          link.href = path;
          link.textContent = label.replace("%s", path.split("/")[2]);
          item.appendChild(link);
          list.appendChild(item);
        });
      list.hidden = !list.children.length;
      document.getElementById("kept-heading").hidden = list.hidden;
    })
    .catch(() => {});
})();
