"""The `xnet` command line. Sub-commands live one per file and import heavy modules lazily."""

from xnet.cli.app import app, main

__all__ = ["app", "main"]
