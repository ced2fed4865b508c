"""``python -m boda``: the same as the ``boda`` command."""

from boda.cli import main

main()
