"""``python -m hearth.registry serve|migrate``."""

import sys

from hearth.registry.cli import main

sys.exit(main())
