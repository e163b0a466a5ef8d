// The viewer's personal layers on a district map: support-needers shaped and coloured by their
// first gap, cooperators. The map itself (drawn once per build, no personal data) is folium's; this adds the
// layers the server sent for this viewer, in the page's <script type="application/json">.
// Tooltip and popup text is inserted as text (textContent), never as HTML.
(function () {
  "use strict";

  function textBlock(lines) {
    var box = document.createElement("div");
    lines.forEach(function (line, i) {
      if (i > 0) { box.appendChild(document.createElement("br")); }
      var part = document.createElement(i === 0 ? "b" : "span");
      part.textContent = line;
      box.appendChild(part);
    });
    return box;
  }

  // a legend row: the marker itself (shape, fill, outline) for a style, a square for a colour
  function legendRow(style, label) {
    var row = document.createElement("div");
    var swatch;
    if (typeof style === "object" && L.KarteShape) {
      swatch = L.KarteShape.svg(style, 18);
    } else {
      swatch = document.createElement("span");
      swatch.setAttribute("aria-hidden", "true");
      swatch.style.cssText = "display:inline-block;width:14px;height:14px;border:1px solid #555;" +
        "margin-right:6px;vertical-align:middle;background:" +
        (typeof style === "object" ? style.fillColor : style);
    }
    row.appendChild(swatch);
    row.appendChild(document.createTextNode(label));
    return row;
  }

  function marker(latlng, style) {
    return L.KarteShape ? new L.KarteShape(latlng, style) : L.circleMarker(latlng, style);
  }

  window.karteAddPersonal = function (map, control, element) {
    var data = JSON.parse(element.textContent);
    data.layers.forEach(function (spec) {
      var group = L.geoJSON(spec.geojson, {
        pointToLayer: function (feature, latlng) {
          return marker(latlng, spec.styles[feature.properties.k] || {});
        },
        onEachFeature: function (feature, layer) {
          layer.bindTooltip(textBlock([spec.tips[feature.properties.k] || ""]));
          layer.bindPopup(textBlock(feature.properties.popup));
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
}());
