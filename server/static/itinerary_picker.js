// The generate form's itinerary search: typing the start of a vessel or voyage lists the matching open
// itineraries in the choice below at once. Without JavaScript the Search button reloads the form with them.
(function () {
  "use strict";
  var input = document.getElementById("f-itinerary_q");
  var select = document.getElementById("f-itinerary_id");
  if (!input || !select || !window.fetch) { return; }
  var timer = null;
  var asked = input.value.trim();

  function show(itineraries) {
    var chosen = select.value;
    // The first option is the "choose one" prompt; the chosen itinerary stays whatever the search finds.
    Array.prototype.slice.call(select.options, 1).forEach(function (option) {
      if (option.value !== chosen) { select.removeChild(option); }
    });
    itineraries.forEach(function (itinerary) {
      if (String(itinerary.id) === chosen) { return; }
      var option = document.createElement("option");
      option.value = itinerary.id;
      option.textContent = itinerary.label;
      select.appendChild(option);
    });
    var none = document.getElementById("no-itineraries");
    if (none) { none.hidden = select.options.length > 1; }
  }

  function ask() {
    var term = input.value.trim();
    if (term === asked) { return; }
    asked = term;
    fetch("/tickets/itineraries?q=" + encodeURIComponent(term), { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (body) { if (body && asked === term) { show(body.itineraries); } })
      .catch(function () { /* the Search button still works */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
})();
