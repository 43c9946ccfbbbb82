/* Pilar staff UI: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // After a form comes back with errors, move focus to the summary so screen-reader and
    // keyboard users start from the list of problems (each one links to its field).
    var summary = document.querySelector(".error-summary, .warning-panel");
    if (summary) {
      summary.focus();
    }
  });
})();
