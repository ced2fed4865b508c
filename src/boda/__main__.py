"""``python -m boda``: the same as the ``boda`` command."""

from boda.cli import main

if __name__ == "__main__":
    main()
