"""Pure geometry and analysis functions over GeoDataFrames.

Nothing in this package reads files, talks to a database or serves HTTP: every function takes
GeoDataFrames (or arrays) and returns new ones. Metric work happens in :data:`gis.crs.METRIC`
(JGD2011 plane rectangular zone X, EPSG:6678); WGS84 appears only at the edges.
"""
