// The live dashboard of one district of a drill: counts by status, the people on a map coloured
// by their status, the elapsed time, who has not been reached. The status comes with the page and
// is asked for again every few seconds (polling; a drill changes by the minute, not the
// millisecond). Names are inserted as text, never as HTML.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("drill-dashboard").textContent);
  var colours = {}, labels = {};
  config.statuses.forEach(function (s) { colours[s.key] = s.colour; labels[s.key] = s.label; });
  var map = L.map("drillmap", {preferCanvas: false, zoomControl: true});
  if (config.tiles) {
    L.tileLayer(config.tiles.url, {attribution: config.tiles.attribution, maxZoom: 18}).addTo(map);
  }
  var outline = L.geoJSON(config.outline, {style: {color: "#1f3b57", weight: 2, fill: false}}).addTo(map);
  map.fitBounds(outline.getBounds(), {padding: [10, 10]});
  L.control.scale({imperial: false}).addTo(map);
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var box = L.DomUtil.create("div", "drill-legend");
    config.statuses.forEach(function (s) {
      var row = document.createElement("div");
      var dot = document.createElement("span");
      dot.className = "legend-dot";
      dot.style.background = s.colour;
      row.appendChild(dot);
      row.appendChild(document.createTextNode(s.label));
      box.appendChild(row);
    });
    return box;
  };
  legend.addTo(map);
  var markers = {};
  var started = Date.now();
  var elapsed0 = 0;

  function draw(st) {
    st.points.forEach(function (p) {
      var style = {radius: 7, color: "#333", weight: p.marked ? 1 : 2, dashArray: p.marked ? null : "2,2",
                   fillColor: colours[p.s] || "#888", fillOpacity: p.marked ? 0.9 : 0.35};
      var m = markers[p.person_id];
      if (!m) {
        m = L.circleMarker([p.lat, p.lon], style).addTo(map);
        markers[p.person_id] = m;
      } else {
        m.setStyle(style);
      }
      var tip = document.createElement("span");
      tip.textContent = p.name + "：" + (p.marked ? labels[p.s] : "まだ記録なし");
      m.bindTooltip(tip);
    });
    document.getElementById("confirmed").textContent = st.confirmed;
    document.getElementById("total").textContent = st.total;
    document.getElementById("share").textContent = st.share === null ? "—" : Math.round(st.share * 100) + "%";
    st.counts.forEach(function (c) {
      var li = document.querySelector('#counts li[data-key="' + c.key + '"] .n');
      if (li) { li.textContent = c.count; }
    });
    var body = document.getElementById("not-reached");
    body.textContent = "";
    st.not_reached.forEach(function (p) {
      var tr = document.createElement("tr");
      var who = document.createElement("td");
      who.textContent = p.name;
      who.appendChild(document.createElement("br"));
      var addr = document.createElement("span");
      addr.className = "muted";
      addr.textContent = p.address;
      who.appendChild(addr);
      var sup = document.createElement("td");
      sup.textContent = p.supporters.join("・") || "（支援者なし）";
      var state = document.createElement("td");
      state.textContent = p.status_ja;
      tr.appendChild(who); tr.appendChild(sup); tr.appendChild(state);
      body.appendChild(tr);
    });
    document.getElementById("nr-count").textContent = st.not_reached.length;
    elapsed0 = st.elapsed_s;
    started = Date.now();
    config.active = st.active;
    var now = new Date();
    document.getElementById("updated").textContent = "最終更新 " +
      now.toLocaleTimeString("ja-JP", {timeZone: "Asia/Tokyo"});
    document.getElementById("updated").dataset.marks = st.marks;
  }

  function tick() {
    var s = elapsed0 + (config.active ? Math.floor((Date.now() - started) / 1000) : 0);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    document.getElementById("elapsed").textContent =
      (h ? h + "時間" : "") + m + "分" + (sec < 10 ? "0" : "") + sec + "秒";
  }

  function poll() {
    fetch(config.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(draw)
      .catch(function () {
        document.getElementById("updated").textContent = "更新できません（接続を確認してください）";
      });
  }

  draw(config.status);
  tick();
  setInterval(tick, 1000);
  setInterval(poll, 5000);
  window.karteDashboardPoll = poll;
})();
