"""The Leaflet elements karte adds to its folium maps (:mod:`karte.render.webmap`): the fit to a
district, a metric scale bar, keyboard order, marker shapes.

Apart from :mod:`karte.render.webmap` because folium (with its tile-provider list) costs about
0.3 s to import: :mod:`karte.render.webmap` imports this module and folium when it draws its first
map, so a sheet, an export or a GeoJSON response that draws none never loads them.
"""

from __future__ import annotations

import json

import folium
from branca.element import MacroElement
from jinja2 import Template

from karte.render.webmap import SHAPES


class Fit(MacroElement):
    """Fit the map to ``bounds`` (lon/lat) and keep them as ``map.karteFit``: once the page has
    laid out its legend and layer control, ``static/karte-a11y.js`` fits again with room beside
    them, so they never cover what the map is of."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.karteFit = L.latLngBounds({{ this.corners }});
        {{ this._parent.get_name() }}.fitBounds({{ this._parent.get_name() }}.karteFit);
        {% endmacro %}
    """)

    def __init__(self, bounds_wgs84: tuple[float, float, float, float]):
        super().__init__()
        self._name = "Fit"
        minx, miny, maxx, maxy = bounds_wgs84
        self.corners = json.dumps([[miny, minx], [maxy, maxx]])


class MetricScale(MacroElement):
    """Leaflet's scale bar in metres only (folium's adds feet and miles)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "MetricScale"


class KeyboardOneStop(MacroElement):
    """The map is one stop of the Tab order (its container: arrow keys pan, + and - zoom), then
    its controls; the shapes and labels drawn on it are not (every district and place on a map
    is also in a table or list beside it). The controls are named in Japanese."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
          var box = map.getContainer();
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", "地図（矢印キーで移動、＋・－キーで拡大・縮小）");
          function name(el, text) { if (el) { el.title = text; el.setAttribute("aria-label", text); } }
          function quiet() {
            box.querySelectorAll(".leaflet-pane .leaflet-interactive, .leaflet-marker-icon, "
                                 + ".leaflet-pane path, .leaflet-pane a").forEach(function (el) {
              if (el.getAttribute("tabindex") !== "-1") { el.setAttribute("tabindex", "-1"); }
            });
            name(box.querySelector(".leaflet-control-zoom-in"), "拡大");
            name(box.querySelector(".leaflet-control-zoom-out"), "縮小");
            name(box.querySelector(".leaflet-control-layers-toggle"), "表示するレイヤの切り替え");
          }
          quiet();
          map.on("layeradd", quiet);
          new MutationObserver(quiet).observe(box, {childList: true, subtree: true});
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "KeyboardOneStop"


class ShapeMarkers(MacroElement):
    """``L.KarteShape``: a circle marker drawn as one of :data:`SHAPES` (option ``shape``), in SVG
    or on a canvas, with everything else of Leaflet's circle marker (style, tooltip, popup). The
    map registers itself in ``window.karteMaps`` (``static/karte-a11y.js`` finds it there)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
          (window.karteMaps = window.karteMaps || []).push({{ this._parent.get_name() }});
          if (L.KarteShape) { return; }
          var SHAPES = {{ this.shapes }};
          function outline(layer) {
            var pts = SHAPES[layer.options.shape], p = layer._point, r = layer._radius;
            return pts ? pts.map(function (q) { return [p.x + q[0] * r, p.y + q[1] * r]; }) : null;
          }
          L.KarteShape = L.CircleMarker.extend({
            _updatePath: function () {
              var pts = outline(this), renderer = this._renderer;
              if (!pts) { return L.CircleMarker.prototype._updatePath.call(this); }
              if (renderer._ctx) {
                if (!renderer._drawing || this._empty()) { return; }
                var ctx = renderer._ctx;
                ctx.beginPath();
                pts.forEach(function (q, i) { ctx[i ? "lineTo" : "moveTo"](q[0], q[1]); });
                ctx.closePath();
                renderer._fillStroke(ctx, this);
              } else {
                renderer._setPath(this, "M" + pts.map(function (q) {
                  return q[0].toFixed(1) + "," + q[1].toFixed(1); }).join("L") + "Z");
              }
            }
          });
          L.karteShape = function (latlng, options) { return new L.KarteShape(latlng, options); };
          L.KarteShape.svg = function (style, size) {
            // parsed from markup (the HTML parser gives SVG its namespace; no URL in the page)
            var half = size / 2, r = half * 0.62, pts = SHAPES[style.shape];
            var wrap = document.createElement("span");
            wrap.innerHTML = pts ? "<svg><path></path></svg>" : "<svg><circle></circle></svg>";
            var svg = wrap.firstChild, el = svg.firstChild;
            svg.setAttribute("width", size); svg.setAttribute("height", size);
            svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
            svg.style.cssText = "vertical-align:middle;margin-right:6px";
            if (pts) {
              el.setAttribute("d", "M" + pts.map(function (q) {
                return (half + q[0] * r).toFixed(2) + "," + (half + q[1] * r).toFixed(2); }).join("L") + "Z");
            } else {
              el.setAttribute("cx", half); el.setAttribute("cy", half); el.setAttribute("r", r);
            }
            el.setAttribute("fill", style.fillColor || style.color || "#fff");
            el.setAttribute("stroke", style.color || "#555");
            el.setAttribute("stroke-width", Math.min(style.weight || 1.5, 3));
            return svg;
          };
        })();
        {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "ShapeMarkers"
        self.shapes = json.dumps({k: v for k, v in SHAPES.items() if v is not None})


class ShapeMarker(folium.CircleMarker):
    """What :func:`point_layer` asks folium's GeoJSON layer to draw each point with: an
    ``L.KarteShape`` (a circle marker unless its style names another of :data:`SHAPES`)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._name = "KarteShape"
