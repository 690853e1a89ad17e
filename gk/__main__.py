"""``python -m gk``: the same as the ``gk`` command."""

import sys

from gk.cli import main

sys.exit(main())
