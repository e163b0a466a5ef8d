// 見守り・セーフティネット: the viewer's households of concern on the district map, and picking a
// point on the map for a new household. The map (drawn once per build, no personal data) is
// folium's; this adds the layers the server sent for this viewer, in the page's
// <script type="application/json" id="karte-care">. Every text is inserted as text (textContent),
// never as HTML; a popup's link goes to the household's page on this site only.
(function () {
  "use strict";

  function popupBlock(lines, links) {
    var box = document.createElement("div");
    lines.forEach(function (line, i) {
      if (i > 0) { box.appendChild(document.createElement("br")); }
      var part = document.createElement(i === 0 ? "b" : "span");
      part.textContent = line;
      box.appendChild(part);
    });
    (links || []).forEach(function (item) {
      var href = item[1];
      if (!href || href.charAt(0) !== "/" || href.charAt(1) === "/") { return; }  // this site only
      box.appendChild(document.createElement("br"));
      var link = document.createElement("a");
      link.href = href;
      link.textContent = "記録を開く: " + item[0];
      link.className = "karte-care-open";
      box.appendChild(link);
    });
    return box;
  }

  function legendRow(colour, label) {
    var row = document.createElement("div");
    var swatch = document.createElement("span");
    swatch.style.cssText = "display:inline-block;width:14px;height:14px;border:1px solid #555;" +
      "border-radius:7px;margin-right:6px;vertical-align:middle;background:" + colour;
    row.appendChild(swatch);
    row.appendChild(document.createTextNode(label));
    return row;
  }

  window.karteAddCare = function (map, control, element) {
    var data = JSON.parse(element.textContent);
    data.layers.forEach(function (spec) {
      var group = L.geoJSON(spec.geojson, {
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, spec.styles[feature.properties.k] || {});
        },
        onEachFeature: function (feature, layer) {
          var tip = document.createElement("span");
          tip.textContent = spec.tips[feature.properties.k] || "";
          layer.bindTooltip(tip);
          layer.bindPopup(popupBlock(feature.properties.popup, feature.properties.links));
        }
      });
      group.addTo(map);
      control.addOverlay(group, spec.name);
    });
    var legend = map.getContainer().parentNode.querySelector(".karte-legend");
    if (legend) {
      data.legend.forEach(function (item) { legend.appendChild(legendRow(item[0], item[1])); });
    }
  };

  // A tap on the map while the "地図で位置を指定" switch is on puts the point into the new
  // household's form (latitude and longitude fields) and shows it with a marker.
  window.karteCarePicker = function (map, toggle, lat, lon, note) {
    var marker = null;
    function show(latlng) {
      if (marker) { marker.setLatLng(latlng); } else {
        marker = L.circleMarker(latlng, {radius: 9, color: "#000", weight: 3, fillColor: "#fff",
                                         fillOpacity: 1}).addTo(map);
      }
    }
    if (lat.value && lon.value) { show([parseFloat(lat.value), parseFloat(lon.value)]); }
    map.on("click", function (event) {
      if (!toggle.checked) { return; }
      lat.value = event.latlng.lat.toFixed(6);
      lon.value = event.latlng.lng.toFixed(6);
      show(event.latlng);
      if (note) { note.textContent = "位置を指定しました（緯度 " + lat.value + "、経度 " + lon.value + "）"; }
    });
    toggle.addEventListener("change", function () {
      map.getContainer().style.cursor = toggle.checked ? "crosshair" : "";
    });
  };

  // The meeting form on a tablet: typing anything for a household ticks "話し合った" and marks its
  // box, so a household is never left out by a forgotten tick (the server counts it either way).
  window.karteCareForm = function (form) {
    if (!form) { return; }
    form.querySelectorAll("fieldset.household").forEach(function (box) {
      var tick = box.querySelector("input[type=checkbox][name$='-discussed']");
      var details = box.querySelector("details");
      function mark() { box.classList.toggle("on", tick.checked); }
      tick.addEventListener("change", function () {
        mark();
        if (tick.checked && details) { details.open = true; }
      });
      box.addEventListener("input", function (event) {
        if (event.target === tick || event.target.type === "hidden") { return; }
        if (event.target.tagName === "SELECT" && !event.target.value) { return; }
        if (event.target.value) { tick.checked = true; mark(); }
      });
    });
  };
}());
