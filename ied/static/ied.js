// Small behaviours on top of htmx; every page works without this file.
(function () {
  "use strict";
  // The CSRF token travels on every htmx request through hx-headers on <body>.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status === 401 && xhr.getResponseHeader("HX-Redirect")) {
      window.location = xhr.getResponseHeader("HX-Redirect");
    }
  });
})();
