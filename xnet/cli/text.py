"""Help text helpers shared by the command modules."""

from __future__ import annotations


def help_text(text: str) -> str:
    """`text` with its square brackets kept: rich markup would read '[default: 3]' as a style and drop it."""
    from rich.markup import escape

    return escape(text)
