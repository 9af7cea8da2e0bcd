// Live updates, the console's only script. The server sends the id of each
// call that changed (server-sent events); the page fetches its own HTML for
// what it shows, so masking and escaping stay on the server.
(function () {
  "use strict";
  var live = document.getElementById("live-rows");
  var lines = document.getElementById("lines");

  function tick() {
    var cells = document.querySelectorAll("[data-started]");
    for (var i = 0; i < cells.length; i++) {
      var s = Math.max(0, Math.floor((Date.now() - Number(cells[i].dataset.started)) / 1000));
      cells[i].textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    }
  }

  // One fetch at a time per element; changes during it fetch once more.
  function refresher(el, url) {
    var busy = false, again = false;
    return function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { el.innerHTML = html; tick(); } })
        .catch(function () {})
        .then(function () { busy = false; if (again) { again = false; refresh(); } });
    };
  }

  tick();
  setInterval(tick, 1000);
  if (!live && !lines) return;
  var refreshLive = live && refresher(live, "/console/live/rows");
  var refreshLines = lines && refresher(lines,
    "/console/calls/" + encodeURIComponent(lines.dataset.call) + "/lines");
  var events = new EventSource("/console/events");
  function changed(id) {
    if (refreshLive) refreshLive();
    if (refreshLines && (id === "" || id === lines.dataset.call)) refreshLines();
  }
  events.addEventListener("call", function (e) { changed(e.data); });
  events.addEventListener("resync", function () { changed(""); });
  // A reconnect may have missed changes.
  events.addEventListener("open", function () { changed(""); });
})();
