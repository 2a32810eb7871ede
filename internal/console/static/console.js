// pathupdate console: small enhancements only; every page and action
// works without this file.
(function () {
  "use strict";
  // The overview reloads its content in place every data-reload-ms
  // (no flicker, no lost scroll position), and not while a form on it has
  // focus (an operator typing a pause time).
  var every = Number(document.body.dataset.reloadMs || 0);
  if (every > 0) {
    setInterval(function () {
      var active = document.activeElement;
      if (active && active.form) { return; }
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["main", "delivery"].forEach(function (id) {
            var fresh = doc.getElementById(id), old = document.getElementById(id);
            // Only what changed: a node replaced under a click loses it.
            if (fresh && old && fresh.outerHTML !== old.outerHTML) { old.replaceWith(fresh); }
          });
          var foot = doc.querySelector("footer");
          var oldFoot = document.querySelector("footer");
          if (foot && oldFoot && foot.outerHTML !== oldFoot.outerHTML) { oldFoot.replaceWith(foot); }
        })
        .catch(function () { /* the next tick tries again */ });
    }, every);
  }
  // "Select all" ticks every box of the page's selection form.
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('#selection input[name="seq"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
})();
