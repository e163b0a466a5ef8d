"""``python -m karte.cli``: the same as the ``karte`` command."""

from karte.cli import main

main()
