// Tells the service that a browser showed this survey, so the invitation
// counts as opened: mail scanners that fetch the link run no script and
// do not count. The page works without it.
(function () {
  "use strict";
  var form = document.querySelector("form[data-opened]");
  if (!form || !window.fetch) {
    return;
  }
  fetch(form.getAttribute("data-opened"), {
    method: "POST",
    credentials: "omit",
    keepalive: true
  }).catch(function () {});
})();
