"""The domain: what a district karte is made of, and who may see what.

Plain definitions with no I/O, imported by every other part of karte:

* :mod:`karte.domain.schema`: layer names and the controlled vocabularies (consent, plan status,
  roles, help kinds, services, mobility, hazards, sheet editions, the stand-in prefix), each one
  registry with its Japanese labels;
* :mod:`karte.domain.layers`: the layer registry (key column, personal or not, written by the
  build or row by row, read by the build snapshot, columns of the record layers);
* :mod:`karte.domain.gaps`: the evacuation-support gap kinds (label, colour, order);
* :mod:`karte.domain.access`: access levels, :class:`~karte.domain.access.Access` and suppression;
* :mod:`karte.domain.errors`: errors with user-safe messages and the HTTP status they map to.
"""

# The layer registry first: it imports the topic modules (history, care, …), which import the
# registry's types; importing a topic module on its own would otherwise meet a half-made registry.
from karte.domain import layers  # noqa: F401
