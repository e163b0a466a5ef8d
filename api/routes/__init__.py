"""The routers of the web app: one module per group of routes (pages.py: the HTML pages)."""
