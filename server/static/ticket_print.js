// The itinerary page's print forms: the PDF downloads and the ticket list is brought up to date at once.
// A plain form post downloads the PDF but leaves the page as it was, showing the tickets just printed
// as "not printed" with their masked codes until a reload. Without JavaScript the forms work that way.
(function () {
  "use strict";
  if (!window.fetch || !window.URL || !window.DOMParser) { return; }
  var status = document.getElementById("print-status");

  function say(text) {
    if (status) { status.textContent = text; }
  }

  function fileName(resp) {
    var found = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    return found ? found[1] : "tickets.pdf";
  }

  function download(blob, name) {
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  }

  function showSelectAll() {
    var box = document.getElementById("select-all");
    if (box) { box.hidden = false; }
  }

  function refreshList() {
    // The list as the server renders it now: printed rows show the printed code.
    return fetch(location.href, { credentials: "same-origin" })
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("tickets");
        var current = document.getElementById("tickets");
        if (fresh && current) { current.replaceWith(fresh); showSelectAll(); }
      });
  }

  function postNatively(form, submitter) {
    // A refused print saved nothing: posting it again the ordinary way shows the page that says why.
    form.setAttribute("data-native", "1");
    if (form.requestSubmit) { form.requestSubmit(submitter || undefined); } else { form.submit(); }
  }

  function fields(form, submitter) {
    var data = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    return data;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-print") || form.hasAttribute("data-native")) { return; }
    event.preventDefault();
    var submitter = event.submitter;
    say(status ? status.getAttribute("data-working") || "…" : "");
    fetch(form.action, { method: "POST", body: fields(form, submitter), credentials: "same-origin" })
      .then(function (resp) {
        var type = resp.headers.get("Content-Type") || "";
        if (!resp.ok || type.indexOf("application/pdf") !== 0) { postNatively(form, submitter); return null; }
        var name = fileName(resp);
        return resp.blob().then(function (blob) {
          download(blob, name);
          return refreshList();
        }).then(function () { say(status ? status.getAttribute("data-done") || "" : ""); });
      })
      .catch(function () { postNatively(form, submitter); });
  });

  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") { return; }
    var boxes = document.querySelectorAll("#tickets input[name=ticket]");
    for (var i = 0; i < boxes.length; i += 1) { boxes[i].checked = event.target.checked; }
  });

  showSelectAll();
})();
