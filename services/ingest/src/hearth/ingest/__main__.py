"""``python -m hearth.ingest serve|migrate``."""

import sys

from hearth.ingest.cli import main

sys.exit(main())
