// A type-ahead for a text field: typing offers the matches of a JSON search in a <datalist>; choosing
// one fills the field in. Without JavaScript the field still takes the value typed in full.
// Markup: <datalist id="…" data-type-ahead="/search/url" data-for="input-id">; the URL is asked
// ?q=<typed text> and answers {"choices": [{"value": "…", "label": "…"}]}.
(function () {
  "use strict";
  if (!window.fetch) { return; }

  function attach(choices) {
    var input = document.getElementById(choices.getAttribute("data-for"));
    var url = choices.getAttribute("data-type-ahead");
    if (!input || !url) { return; }
    input.setAttribute("list", choices.id);
    var timer = null;
    var asked = "";

    function show(found) {
      choices.textContent = "";
      found.forEach(function (choice) {
        var option = document.createElement("option");
        option.value = choice.value;
        option.label = choice.label;
        option.textContent = choice.label;
        choices.appendChild(option);
      });
    }

    function ask() {
      var term = input.value.trim();
      if (term === asked) { return; }
      asked = term;
      if (!term) { show([]); return; }
      fetch(url + "?q=" + encodeURIComponent(term), { credentials: "same-origin" })
        .then(function (resp) { return resp.ok ? resp.json() : { choices: [] }; })
        .then(function (body) { if (asked === term) { show(body.choices); } })
        .catch(function () { /* the typed value still works */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("datalist[data-type-ahead]"), attach);
})();
