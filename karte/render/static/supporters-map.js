// The map of the supporters pages (地域福祉サポーター): the district outline, requests with a
// suggested supporter (joined by a line), unmet requests coloured by why, supporters with their
// reach, and where recruiting one more supporter would reach most unmet requests. The data is in
// the page's <script type="application/json" id="supporters-map-data">; every label is inserted
// as text (textContent), never as HTML. Leaflet is the app's own copy (/static/leaflet).
(function () {
  "use strict";

  function textBlock(lines) {
    var box = document.createElement("div");
    lines.forEach(function (line, i) {
      if (!line) { return; }
      if (box.childNodes.length) { box.appendChild(document.createElement("br")); }
      var part = document.createElement(i === 0 ? "b" : "span");
      part.textContent = line;
      box.appendChild(part);
    });
    return box;
  }

  function legendRow(colour, label) {
    var row = document.createElement("div");
    var swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    row.appendChild(swatch);
    row.appendChild(document.createTextNode(label));
    return row;
  }

  function draw(element) {
    var data = JSON.parse(element.textContent);
    var box = document.getElementById(element.getAttribute("data-map"));
    var map = L.map(box, { preferCanvas: false });
    box.style.background = data.background;
    var base = {};
    if (data.tiles) {
      base["背景地図"] = L.tileLayer(data.tiles, { attribution: data.attribution, maxZoom: 18 }).addTo(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
    var control = L.control.layers(base, {}, { collapsed: window.innerWidth < 900 }).addTo(map);
    var outline = L.geoJSON(data.districts, {
      style: { color: "#1d2327", weight: 2, fill: false },
      onEachFeature: function (f, layer) { layer.bindTooltip(textBlock([f.properties.district_name])); }
    }).addTo(map);
    control.addOverlay(outline, "地区");

    var helpers = L.layerGroup();
    data.supporters.forEach(function (s) {
      if (s.reach_m > 0) {
        L.circle(s.p, { radius: s.reach_m / 1.3, color: data.colours.supporter, weight: 1, opacity: 0.5,
                        fillOpacity: 0.06, interactive: false }).addTo(helpers);
      }
      L.circleMarker(s.p, { radius: 5, color: "#fff", weight: 1.5, fillColor: data.colours.supporter,
                            fillOpacity: 1 }).bindPopup(textBlock(s.text)).addTo(helpers);
    });
    if (data.supporters.length) { helpers.addTo(map); control.addOverlay(helpers, "サポーターと活動範囲"); }

    var pairs = L.layerGroup();
    data.pairs.forEach(function (p) {
      L.polyline([p.r, p.s], { color: data.colours.met, weight: 2, dashArray: "4 4" }).addTo(pairs);
      L.circleMarker(p.s, { radius: 5, color: "#fff", weight: 1.5, fillColor: data.colours.supporter,
                            fillOpacity: 1 }).bindPopup(textBlock(p.supporter)).addTo(pairs);
      L.circleMarker(p.r, { radius: 6, color: "#fff", weight: 1.5, fillColor: data.colours.met,
                            fillOpacity: 1 }).bindPopup(textBlock(p.request)).addTo(pairs);
    });
    if (data.pairs.length) { pairs.addTo(map); control.addOverlay(pairs, "候補（依頼とサポーター）"); }

    var unmet = L.layerGroup();
    data.unmet.forEach(function (u) {
      L.circleMarker(u.p, { radius: 7, color: "#fff", weight: 1.5, fillColor: u.c, fillOpacity: 1 })
        .bindPopup(textBlock(u.text)).addTo(unmet);
    });
    if (data.unmet.length) { unmet.addTo(map); control.addOverlay(unmet, "未対応の依頼"); }

    var recruit = L.layerGroup();
    data.recruit.forEach(function (r) {
      if (r.reach_m > 0) {
        L.circle(r.p, { radius: r.reach_m / 1.3, color: data.colours.recruit, weight: 2, dashArray: "6 4",
                        fill: false, interactive: false }).addTo(recruit);
      }
      L.circleMarker(r.p, { radius: 9, color: "#fff", weight: 2, fillColor: data.colours.recruit,
                            fillOpacity: 0.9 }).bindPopup(textBlock(r.text)).addTo(recruit);
    });
    if (data.recruit.length) { recruit.addTo(map); control.addOverlay(recruit, "募集の候補地"); }

    map.fitBounds(data.bounds, { padding: [12, 12] });
    var legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      var div = L.DomUtil.create("details", "karte-legend leaflet-bar");
      div.open = window.innerWidth >= 900;
      div.style.background = "#fff";
      div.style.padding = "4px 8px";
      var summary = document.createElement("summary");
      summary.textContent = "凡例";
      div.appendChild(summary);
      data.legend.forEach(function (item) { div.appendChild(legendRow(item[0], item[1])); });
      return div;
    };
    legend.addTo(map);
    box.karteMap = map;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("script.supporters-map-data").forEach(draw);
  });
}());
