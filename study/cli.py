"""What the command-line entry points share: argument types and how a UserError reaches the user."""

from __future__ import annotations

import argparse
import sys
import textwrap

from study.errors import UserError


def at_least(cast, low, strict: bool, words: str):
    """An argparse type: `cast(text)`, refused unless above `low` (strict) or at least `low`."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {words}, not {text}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {words}, not {text}")
        return value

    return parse


count = at_least(int, 1, False, "a whole number of at least 1")
retries = at_least(int, 0, False, "a whole number of at least 0")
share = at_least(float, 0, True, "positive")
gpu_share = at_least(float, 0, False, "zero or positive")

EXIT_BAD_INPUT = 2


def print_error(error: UserError) -> int:
    """Print a UserError as one wrapped paragraph (paths unbroken); returns the exit status."""
    print(textwrap.fill(f"error: {error}", width=100, break_on_hyphens=False, break_long_words=False), file=sys.stderr)
    return EXIT_BAD_INPUT
