// The install page: where the browser offers to install the app itself (Chrome and Edge on Android and
// desktop), a button that opens its prompt; elsewhere the written steps are all there is.
"use strict";
(function () {
  const button = document.getElementById("install-button");
  if (!button) return;
  let prompt = null;
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    prompt = event;
    button.hidden = false;
  });
  button.addEventListener("click", () => {
    if (!prompt) return;
    prompt.prompt();
    prompt.userChoice.finally(() => {
      prompt = null;
      button.hidden = true;
    });
  });
  window.addEventListener("appinstalled", () => {
    button.hidden = true;
    const done = document.getElementById("installed");
    if (done) done.hidden = false;
  });
})();
