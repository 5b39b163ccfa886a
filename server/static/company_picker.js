// The purchase form's company picker: typing the start of a name or tax id offers the matching
// companies of the billing registry; choosing one fills in its tax id. Without JavaScript the field
// still takes a tax id typed in full.
(function () {
  "use strict";
  var input = document.getElementById("f-company");
  var choices = document.getElementById("company-choices");
  if (!input || !choices || !window.fetch) { return; }
  input.setAttribute("list", "company-choices");
  var timer = null;
  var asked = "";

  function show(companies) {
    choices.textContent = "";
    companies.forEach(function (company) {
      var option = document.createElement("option");
      option.value = company.tax_id;
      option.label = company.name + " (" + company.tax_id + ")";
      option.textContent = company.name;
      choices.appendChild(option);
    });
  }

  function ask() {
    var term = input.value.trim();
    if (term === asked) { return; }
    asked = term;
    if (!term) { show([]); return; }
    fetch("/billing/purchases/companies?q=" + encodeURIComponent(term), { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : { companies: [] }; })
      .then(function (body) { if (asked === term) { show(body.companies); } })
      .catch(function () { /* the typed tax id still works */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
})();
