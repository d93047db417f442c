"""CLI command groups (see ebgan.cli.COMMANDS)."""
