"""The one exception type that reaches the user as a message, not a traceback."""


class UserError(Exception):
    """Bad input or a missing resource the user can fix; the CLI prints it and exits with status 2."""
