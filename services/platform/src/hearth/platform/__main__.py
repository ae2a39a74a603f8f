"""``python -m hearth.platform``: the ``hearth`` command (the image's default command)."""

from hearth.platform.cli import main

raise SystemExit(main())
