// Tables never widen the page: each sits in a box that scrolls sideways when the screen is too
// narrow (WCAG 1.4.10 reflow), and a box that does scroll becomes a focusable, named region so
// it can be scrolled from the keyboard (WCAG 2.1.1). Checked again when the window is resized.
// A skip link whose target the page does not have is removed.
// On the maps (each registers itself in window.karteMaps, see karte/render/webmap.py):
// - name labels (.karte-label) never overlap: after every zoom or move the labels are placed
//   largest district first and a label whose box meets an already placed one is hidden; hidden
//   ones come back as soon as the zoom leaves them room;
// - Escape closes the hover tooltip without moving the pointer (WCAG 1.4.13);
// - on a map narrower than 600 px the legend and the layer control start folded; on a wider one
//   the map is fitted again so that the open legend and layer control do not cover the district.
(function () {
  function box(table) {
    var parent = table.parentElement;
    if (parent.classList.contains("scroll-x") || parent.classList.contains("tablewrap")) {
      return parent;
    }
    var wrap = document.createElement("div");
    wrap.className = "scroll-x";
    wrap.dataset.karteWrap = "1";
    parent.insertBefore(wrap, table);
    wrap.appendChild(table);
    return wrap;
  }
  function mark() {
    document.querySelectorAll("main table").forEach(function (table) {
      var wrap = box(table);
      if (!wrap.dataset.karteWrap) { return; }  // a template's own region keeps its name
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        var caption = table.querySelector("caption");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (caption ? caption.textContent.trim() + "（" : "表（")
                          + "横にスクロールできます）");
      } else if (!scrolls && wrap.hasAttribute("tabindex")) {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  // --- map labels -------------------------------------------------------------------------
  var PAD = 2;  // px kept free around each label

  function ringArea(ring) {  // shoelace, in degrees² (only compared with each other)
    var sum = 0;
    for (var i = 0, n = ring.length; i < n; i++) {
      var a = ring[i], b = ring[(i + 1) % n];
      sum += a.lng * b.lat - b.lng * a.lat;
    }
    return Math.abs(sum) / 2;
  }
  function polygonArea(latlngs) {  // outer rings of a (multi)polygon's nested latlngs
    if (!latlngs.length) { return 0; }
    if (latlngs[0] instanceof L.LatLng) { return ringArea(latlngs); }
    if (latlngs[0].length && latlngs[0][0] instanceof L.LatLng) { return ringArea(latlngs[0]); }
    return latlngs.reduce(function (s, part) { return s + polygonArea(part); }, 0);
  }
  function isLabel(layer) {
    var icon = layer.options && layer.options.icon;
    return !!(icon && /(^|\s)karte-label(\s|$)/.test(icon.options.className || ""));
  }
  // the size of the district a label names: the polygon of the same name, else the smallest one
  // whose bounds hold the label
  function labelSize(label, areas) {
    var name = (label._icon ? label._icon.textContent : "").trim(), ll = label.getLatLng();
    var named = areas.filter(function (a) { return a.name === name; });
    if (named.length) { return named[0].area; }
    var holding = areas.filter(function (a) { return a.bounds.contains(ll); })
      .sort(function (a, b) { return a.area - b.area; });
    return holding.length ? holding[0].area : 0;
  }
  // the box of a label's text (its icon is a 1 px anchor the text overflows)
  function textBox(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    return range.getBoundingClientRect();
  }
  function declutter(map) {
    var labels = [], polygons = [];
    map.eachLayer(function (layer) {
      if (isLabel(layer)) {
        if (layer._icon) { labels.push(layer); }
      } else if (layer.feature && layer.getLatLngs && layer.feature.geometry
                 && /Polygon/.test(layer.feature.geometry.type)) {
        polygons.push(layer);
      }
    });
    if (!labels.length) { return; }
    var areas = null;
    labels.forEach(function (label) {
      if (label._karteSize === undefined) {
        areas = areas || polygons.map(function (p) {
          var props = p.feature.properties || {};
          return {name: String(props.district_name || props.name || "").replace("（仮）", "").trim(),
                  bounds: p.getBounds(), area: polygonArea(p.getLatLngs())};
        });
        label._karteSize = labelSize(label, areas);
      }
      label._icon.style.visibility = "";
      label._icon.removeAttribute("aria-hidden");
    });
    labels.sort(function (a, b) { return b._karteSize - a._karteSize; });
    var placed = [];
    labels.forEach(function (label) {
      var icon = label._icon;
      if (icon.offsetParent === null) { return; }  // hidden by its own rule (small districts when zoomed out)
      var r = textBox(icon);
      if (!r.width && !r.height) { return; }
      var hit = placed.some(function (p) {
        return r.left < p.right + PAD && r.right + PAD > p.left && r.top < p.bottom + PAD && r.bottom + PAD > p.top;
      });
      if (hit) {
        icon.style.visibility = "hidden";
        icon.setAttribute("aria-hidden", "true");
      } else {
        placed.push(r);
      }
    });
  }
  function watch(map) {
    if (map._karteWatched) { return; }
    map._karteWatched = true;
    var queued = false;
    function later() {
      if (queued) { return; }
      queued = true;
      window.requestAnimationFrame(function () { queued = false; declutter(map); });
    }
    map.on("zoomend moveend resize layeradd overlayadd", later);
    later();
  }

  // --- small screens: the legend and the layer control start folded, so they never hide the map;
  //     the legend's 凡例 and the layer button open them, a tap on the map folds the layers again ---
  var SMALL = 600;  // px of map width
  // --- wider maps: the legend and the layer control stay open, and the map is fitted again so
  //     that what it is of (map.karteFit, karte/render/webmap.py) lies clear of them ---
  var MARGIN = 8;  // px between the fitted shapes and a control
  var ROOM = 280;  // px of map width that must stay beside the open controls
  function clear(map) {
    var box = map.getContainer();
    if (!map.karteFit || box.clientWidth < SMALL) { return; }
    var pad = padding(box);
    // too little map beside the open controls (the city's wide legend on a narrow map): the
    // legend starts folded, as on a phone, then the layer control if that is not enough
    if (box.clientWidth - pad[0] - pad[1] < ROOM) { foldLegend(box); pad = padding(box); }
    if (box.clientWidth - pad[0] - pad[1] < ROOM) { foldLayers(map, box); pad = padding(box); }
    if (pad[0] + pad[1] === 0) { return; }  // nothing covers the map
    map.fitBounds(map.karteFit, {paddingTopLeft: [pad[0], MARGIN], paddingBottomRight: [pad[1], MARGIN]});
  }
  // [left, right]: px of the map's width the open legend and layer control cover, on each side
  function padding(box) {
    var frame = box.getBoundingClientRect(), right = 0, left = 0;
    var covers = [box.querySelector(".leaflet-control-layers"),
                  box.parentNode.querySelector("details.karte-legend[open]")];
    covers.forEach(function (el) {
      if (!el) { return; }
      var r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) { return; }
      if (r.left + r.width / 2 > frame.left + frame.width / 2) {
        right = Math.max(right, frame.right - r.left + MARGIN);
      } else {
        left = Math.max(left, r.right - frame.left + MARGIN);
      }
    });
    return [left, right];
  }
  function foldLegend(box) {
    var legend = box.parentNode.querySelector("details.karte-legend");
    if (legend) { legend.removeAttribute("open"); }
  }
  function foldLayers(map, box) {
    var layers = box.querySelector(".leaflet-control-layers");
    if (!layers || map._karteFolds) { return; }
    map._karteFolds = true;
    layers.classList.remove("leaflet-control-layers-expanded");
    map.on("click", function () { layers.classList.remove("leaflet-control-layers-expanded"); });
  }

  function compact(map) {
    var box = map.getContainer();
    if (box.clientWidth >= SMALL) { clear(map); return; }
    foldLegend(box);
    foldLayers(map, box);
  }

  // --- tooltips: Escape dismisses them (WCAG 1.4.13) ----------------------------------------
  function closeTooltips(event) {
    if (event.key !== "Escape" && event.key !== "Esc") { return; }
    (window.karteMaps || []).forEach(function (map) {
      map.eachLayer(function (layer) {
        var tip = layer.getTooltip && layer.getTooltip();
        if (tip && !tip.options.permanent && layer.isTooltipOpen()) { layer.closeTooltip(); }
      });
    });
  }

  function start() {
    mark();
    if (window.L) { (window.karteMaps || []).forEach(function (map) { watch(map); compact(map); }); }
    window.karteWatchMap = watch;
    // a page without tables beside its map has no target for the second skip link
    document.querySelectorAll('a.skip[href^="#"]').forEach(function (link) {
      if (!document.getElementById(link.getAttribute("href").slice(1))) { link.remove(); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  window.addEventListener("resize", mark);
  document.addEventListener("keydown", closeTooltips);
})();
