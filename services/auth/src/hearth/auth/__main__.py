"""``python -m hearth.auth serve|migrate``."""

import sys

from hearth.auth.cli import main

sys.exit(main())
