"""What the command-line entry points share: argument types, which flags were typed, and how a UserError reaches the user."""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from pathlib import Path

from study.errors import UserError


def at_least(cast, low, strict: bool, words: str, high=None):
    """An argparse type: `cast(text)`, refused unless above `low` (strict) or at least `low`, at most `high`,
    and finite (`nan` compares false with every bound, so it would pass them all)."""

    def parse(text: str):
        try:
            value = cast(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {words}, not {text}") from None
        if not math.isfinite(value) or value < low or (strict and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {words}, not {text}")
        return value

    parse.low, parse.strict = low, strict  # the bound, for readers of records the flags wrote (study.invocation)
    return parse


count = at_least(int, 1, False, "a whole number of at least 1")
retries = at_least(int, 0, False, "a whole number of at least 0")
share = at_least(float, 0, True, "positive")
gpu_share = at_least(float, 0, False, "zero or positive")
# Optuna's samplers and numpy take seeds below 2**32; a study adds up to a few thousand to its seed
# (one per architecture, 1000 + k for the repeats), so the user's seed stays well below that.
SEED_MAX = 2**31 - 1
seed = at_least(int, 0, False, f"a whole number from 0 to {SEED_MAX}", high=SEED_MAX)
# A name becomes a folder (and part of Ray's trial folder names); file systems allow 255 bytes a name.
NAME_MAX = 100


def check_folder_name(flag: str, name: str, under: str, extra: str = "") -> None:
    """A UserError unless `name` can name one folder under `under`: letters, digits, '.', '_', '-' (and `extra`),
    at most NAME_MAX characters."""
    allowed = "A-Za-z0-9._" + re.escape(extra) + "-"
    shown = ", ".join(f"'{char}'" for char in "._" + extra) + " and '-'"
    if not re.fullmatch(f"[A-Za-z0-9][{allowed}]*", name):
        raise UserError(f"{flag} {name!r}: use letters, digits, {shown} only (it names a folder under {under}).")
    if len(name) > NAME_MAX:
        raise UserError(f"{flag} is {len(name)} characters long: it names a folder under {under}, so use at most {NAME_MAX}.")


class _Untyped(list):
    """What a flag holds when it was not typed (a list, so that append flags such as --fix still work)."""


def typed_flags(parser: argparse.ArgumentParser, argv: list[str] | None, args: argparse.Namespace) -> frozenset[str]:
    """The destinations of the flags typed in `argv` (parsed as `args`): argparse fills in a default only
    where the namespace has no value yet, so a flag left at a marker was not typed."""
    untyped = _Untyped()
    typed = parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(vars(args), untyped)))
    return frozenset(name for name, value in vars(typed).items() if value is not untyped)


def nonempty_path(text: str) -> Path:
    """An argparse type for a path flag: an empty one is refused (Path("") is the current folder, which
    `--out ""` or `--data-dir "$UNSET"` does not mean)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty: give a path ('.' for the current folder)")
    return Path(text)


def nonempty_text(value: str) -> str:
    """An argparse type for a flag naming something (--name, --storage): an empty value is refused, not
    taken for the default or the current folder."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C


def print_error(error: UserError) -> int:
    """Print a UserError as one wrapped paragraph (paths unbroken); returns the exit status."""
    print(textwrap.fill(f"error: {error}", width=100, break_on_hyphens=False, break_long_words=False), file=sys.stderr)
    return EXIT_BAD_INPUT


def print_interrupted(consequence: str) -> int:
    """Say in one line that Ctrl-C (or SIGTERM) stopped the command and what that left; returns the exit status."""
    print(f"Interrupted: {consequence}", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED
