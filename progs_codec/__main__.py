"""python -m progs_codec: the progs-codec command."""

import sys

from .cli import main

sys.exit(main())
