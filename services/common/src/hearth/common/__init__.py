"""hearth.common: the library every Hearth service shares. Never run on its own."""
