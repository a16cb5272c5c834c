"""The one exception type that reaches the user as a message, not a traceback, and the name lookup that raises it."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a missing resource the user can fix; the CLI prints it and exits with status 2."""


def lookup(table: dict, name: str, what: str):
    """table[name], or a UserError naming the valid choices (datasets, architectures, readouts, ...)."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise UserError(f"Unknown {what} {name!r}. Valid {what}s: {', '.join(sorted(map(str, table)))}.") from None
