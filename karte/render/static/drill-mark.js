// Marking people during a drill on a phone (訓練の安否確認), offline-tolerant.
//
// Each tap makes a mark with an id of its own (crypto.randomUUID) and the device's time, and
// stores it in localStorage under its own key ("karte-mark:<drill>:<id>") before anything is
// sent: one key per mark, so adding and removing are single atomic writes and two tabs never
// overwrite each other's queue. The queue is sent when the page loads, after every tap, when the
// browser says it is online again, and every few seconds while anything waits; a mark leaves the
// queue only when the server says it has it ("received" now, or "duplicates": it had it already)
// or refused it ("rejected", with the reason shown). The server stores a mark id once, so a mark
// sent twice (a reply lost when the network dropped) is counted once. Only one tab sends at a
// time (Web Locks, where the browser has them). Text is inserted as text, never as HTML.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("drill-config").textContent);
  var PREFIX = "karte-mark:" + config.drill + ":";
  var labels = {};
  config.statuses.forEach(function (s) { labels[s.key] = s; });
  var net = document.getElementById("netstate");
  var sending = false;
  var failures = 0;
  var timer = null;

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function queued() {
    var out = [];
    for (var i = 0; i < localStorage.length; i++) {
      var key = localStorage.key(i);
      if (key && key.indexOf(PREFIX) === 0) {
        try { out.push(JSON.parse(localStorage.getItem(key))); } catch (e) { localStorage.removeItem(key); }
      }
    }
    out.sort(function (a, b) { return a.marked_at < b.marked_at ? -1 : a.marked_at > b.marked_at ? 1 : 0; });
    return out;
  }

  function show(personId, status, pending) {
    var item = document.getElementById("p-" + personId);
    if (!item) { return; }
    var spec = labels[status];
    item.dataset.status = status;
    item.style.setProperty("--c", spec ? spec.colour : "#bbb");
    var state = item.querySelector(".state");
    state.textContent = spec ? spec.label : "未記録";
    state.classList.toggle("pending", !!pending);
    item.querySelectorAll(".choices button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.status === status ? "true" : "false");
    });
  }

  function status(text, kind) {
    net.textContent = text;
    net.className = "netstate" + (kind ? " " + kind : "");
  }

  function refreshStatus() {
    var waiting = queued().length;
    if (!navigator.onLine) {
      status("オフライン: " + waiting + "件を端末に保存しています（つながると送信します）", "offline");
    } else if (waiting) {
      status("送信待ち " + waiting + "件", failures ? "offline" : "");
    } else {
      status("オンライン: すべての記録を送信しました");
    }
  }

  function schedule(ms) {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(flush, ms);
  }

  function send() {
    var marks = queued().slice(0, 200);
    if (!marks.length) { return Promise.resolve(); }
    return fetch("/api/drills/marks", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": config.csrf},
      body: JSON.stringify({drill: config.drill, marks: marks})
    }).then(function (r) {
      if (r.status === 401 || r.status === 403) {
        status("ログインの期限が切れました。記録は端末に残っています。ログインし直してください", "error");
        throw new Error("auth");
      }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (result) {
      failures = 0;
      result.received.concat(result.duplicates).forEach(function (id) {
        var mark = JSON.parse(localStorage.getItem(PREFIX + id) || "null");
        localStorage.removeItem(PREFIX + id);
        if (mark) { settle(mark.person_id); }
      });
      var box = document.getElementById("rejected");
      result.rejected.forEach(function (r) {
        localStorage.removeItem(PREFIX + r.id);
        var p = document.createElement("p");
        p.className = "notice warn";
        p.textContent = "送信できなかった記録があります: " + r.reason;
        box.appendChild(p);
      });
      if (queued().length) { return send(); }
    });
  }

  function settle(personId) {
    // the shown status is the person's latest tap; it is "pending" while any of theirs waits
    var item = document.getElementById("p-" + personId);
    if (!item) { return; }
    var waiting = queued().some(function (m) { return m.person_id === personId; });
    item.querySelector(".state").classList.toggle("pending", waiting);
  }

  function flush() {
    if (sending) { return; }
    if (!queued().length) { refreshStatus(); return; }
    sending = true;
    var run = function () { return send(); };
    var job = (navigator.locks && navigator.locks.request) ?
      navigator.locks.request("karte-drill-send", run) : run();
    Promise.resolve(job).then(function () {
      sending = false;
      refreshStatus();
    }, function (e) {
      sending = false;
      failures += 1;
      refreshStatus();
      if (String(e && e.message) !== "auth") { schedule(Math.min(30000, 2000 * failures)); }
    });
  }

  document.querySelectorAll(".person").forEach(function (item) {
    if (item.dataset.status) { show(item.dataset.person, item.dataset.status, false); }
    item.querySelectorAll(".choices button").forEach(function (button) {
      button.addEventListener("click", function () {
        var mark = {id: newId(), person_id: item.dataset.person, district: config.district,
                    status: button.dataset.status, marked_at: new Date().toISOString()};
        localStorage.setItem(PREFIX + mark.id, JSON.stringify(mark));
        show(mark.person_id, mark.status, true);
        refreshStatus();
        flush();
      });
    });
  });
  queued().forEach(function (m) { show(m.person_id, m.status, true); });
  window.addEventListener("online", function () { failures = 0; flush(); });
  window.addEventListener("offline", refreshStatus);
  setInterval(function () { if (queued().length && navigator.onLine) { flush(); } }, 5000);
  window.karteDrillQueue = function () { return queued().length; };
  refreshStatus();
  flush();
})();
