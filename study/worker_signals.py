"""Ray workers of a study stop quietly when Ray ends them with SIGTERM.

Ray's worker answers SIGTERM by raising SystemExit from its signal handler. When the signal lands
while Python runs a finalizer or a weakref callback, the exception cannot propagate: Python prints
"Exception ignored in ..." with a traceback into the study's log and the worker carries on until the
raylet kills it. An interrupted study then ends with a traceback although nothing went wrong.
"""

from __future__ import annotations

import os
import sys


def _exit_on_swallowed_system_exit(unraisable) -> None:
    if isinstance(unraisable.exc_value, SystemExit):
        # The exit Ray asked for, without the traceback: flush what the trial printed, then leave.
        code = unraisable.exc_value.code
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed stream must not stop the exit
                pass
        os._exit(code if isinstance(code, int) else 1)
    sys.__unraisablehook__(unraisable)


def exit_quietly_on_sigterm() -> None:
    """In a Ray worker (the study's `ray.init` installs it): an exit asked for inside a finalizer exits."""
    sys.unraisablehook = _exit_on_swallowed_system_exit
