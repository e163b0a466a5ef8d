"""Coordinate reference systems of the analyses: one metric plane CRS, WGS84 at the edges."""

#: JGD2011 / Japan Plane Rectangular CS X (Aomori's zone): metres, for all distance and area work.
METRIC = "EPSG:6678"
#: WGS84 longitude/latitude: only at the edges (GeoJSON, web maps, input files).
WGS84 = "EPSG:4326"
