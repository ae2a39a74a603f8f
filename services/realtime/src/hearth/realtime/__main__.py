"""``python -m hearth.realtime serve``."""

import sys

from hearth.realtime.cli import main

sys.exit(main())
