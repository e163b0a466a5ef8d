"""karte: the district karte (地区カルテ) of Japanese community-welfare councils."""

__version__ = "0.1.0"
