"""python -m progs_codec: the progs-codec command."""

import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
