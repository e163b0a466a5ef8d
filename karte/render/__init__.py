"""Rendering of kartes: web maps (folium) and, later, printed sheets."""
