"""What a viewer gets: the one layer that applies the access rules, suppression and the access log.

Every web route, page, CSV, PDF and command that shows karte data asks a module here, passing the
store and the viewer's :class:`~karte.domain.access.Access`:

* :mod:`~karte.services.kartes`: a district's karte, the districts list;
* :mod:`~karte.services.layers`: a map layer (public layers from the build snapshot, personal
  layers read from the store as the viewer);
* :mod:`~karte.services.pages`: what the district page shows;
* :mod:`~karte.services.sheets`: printed district sheets (one, or a batch);
* :mod:`~karte.services.outreach`: the coordinator's ranking, suggestions and decisions.

The rules, once, here: build data comes from :func:`karte.snapshot.current`; personal rows come
from the store, read as the viewer (the store filters them, PostGIS by row-level security, and
logs the read with the real user); public viewers get counts of 1 to ``max_small`` as
:data:`~karte.domain.access.SUPPRESSED` with their rates hidden (:mod:`~karte.services.suppression`).
Rendering (:mod:`karte.render`) is then handed data that is already what the viewer may see.
"""
