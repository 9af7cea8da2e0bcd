// Live updates, the console's only script. The server sends the id of each
// call that changed (server-sent events); the page fetches its own HTML for
// what it shows, so masking and escaping stay on the server. The agent page
// gets its screen pops as JSON on its own event stream.
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

  // The agent page: each transfer to its queue arrives as JSON and is
  // drawn with textContent only (the server masked what the reader may
  // not see). data-shown-ms says when it was drawn, for the test's timing.
  function agent(pops) {
    if (!pops) return;
    var status = document.getElementById("agent-status");
    function el(tag, cls, text) {
      var e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    function fact(dl, name, cls, value) {
      dl.appendChild(el("dt", null, name));
      dl.appendChild(el("dd", cls, value || "—"));
    }
    function draw(p) {
      var card = el("article", "pop");
      card.dataset.call = p.call_id;
      card.dataset.referMs = p.refer_ms;
      var head = el("header");
      var c = p.customer;
      head.appendChild(el("h2", "customer", c ? c.name : "Unknown caller"));
      if (c && c.tier) head.appendChild(el("span", "tier tier-" + c.tier, c.tier));
      head.appendChild(el("span", "when", new Date(p.refer_ms).toISOString().replace("T", " ").slice(0, 19) + " UTC"));
      card.appendChild(head);
      var facts = el("dl", "facts");
      fact(facts, "Number", "number", p.caller);
      if (c) fact(facts, "Customer id", "customer-id", c.id + " (" + c.system + ")");
      fact(facts, "Intent", "intent", p.intent);
      fact(facts, "Reason", "reason", p.reason);
      fact(facts, "Transferred to", "target", p.target);
      fact(facts, "Call", "call-id", p.call_id);
      card.appendChild(facts);
      card.appendChild(el("h3", null, "Open orders"));
      var orders = el("ul", "orders");
      (p.open_orders || []).forEach(function (o) {
        var li = el("li", "order");
        li.appendChild(el("span", "order-id", o.id));
        li.appendChild(el("span", "order-status", o.status));
        if (o.placed_at) li.appendChild(el("span", "order-date", o.placed_at));
        if (o.total) li.appendChild(el("span", "order-total", o.total + (o.currency ? " " + o.currency : "")));
        orders.appendChild(li);
      });
      if (!orders.children.length) orders.appendChild(el("li", "empty", "none"));
      card.appendChild(orders);
      card.appendChild(el("h3", null, "Transcript"));
      var t = el("ol", "transcript");
      (p.transcript || []).forEach(function (l) {
        var li = el("li", l.speaker);
        li.appendChild(el("span", "speaker", l.speaker));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "text", l.text));
        t.appendChild(li);
      });
      card.appendChild(t);
      var none = document.getElementById("no-pops");
      if (none) none.remove();
      pops.insertBefore(card, pops.firstChild);
      card.dataset.shownMs = Date.now();
    }
    var q = pops.dataset.queue;
    var events = new EventSource("/console/agent/events?queue=" + encodeURIComponent(q));
    events.addEventListener("ready", function () {
      status.textContent = "Listening for transfers to " + q + ".";
      pops.dataset.listening = "yes";
    });
    events.addEventListener("transfer", function (e) {
      try { draw(JSON.parse(e.data)); } catch (err) { status.textContent = "A transfer could not be shown."; }
    });
    events.addEventListener("lagged", function (e) {
      status.textContent = e.data + " transfers were missed; reload to be sure.";
    });
    events.addEventListener("error", function () {
      pops.dataset.listening = "";
      status.textContent = "Reconnecting…";
    });
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
  // The overview's charts gain a point a minute: read the page again.
  if (document.getElementById("overview")) {
    setTimeout(function () { location.reload(); }, 60000);
  }
  agent(document.getElementById("pops"));
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
