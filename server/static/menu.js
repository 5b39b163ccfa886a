// The phone layout's menu button: it opens and closes the account links and the side menu together
// (portal.css shows them under the header while <body> has the class "menu-open"). Without
// JavaScript the header's "Menú" link does the same through #menu:target; this swaps it for the button.
(function () {
  "use strict";
  var button = document.getElementById("menu-button");
  if (!button) { return; }
  document.documentElement.classList.add("menu-js");

  function setOpen(open) {
    document.body.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  button.addEventListener("click", function () {
    setOpen(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      button.focus();
    }
  });
  // A page brought back from the back/forward cache starts closed, like a new one.
  window.addEventListener("pageshow", function () { setOpen(false); });
}());
