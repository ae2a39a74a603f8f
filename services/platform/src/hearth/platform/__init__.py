"""hearth.platform: the platform's own commands (secrets, broker config, bootstrap)."""
