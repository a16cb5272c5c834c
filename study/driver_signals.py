"""The study's driver and signals: SIGTERM interrupts a study as Ctrl-C does, inside Ray Tune's loop and outside it.

Ray's `ray.init` installs a SIGTERM handler that exits with no word, and Ray Tune leaves its SIGINT and
SIGUSR1 handlers installed after `Tuner.fit()` returns. The study's driver (study.run) puts its own in
place around each phase, so that an interrupted study always ends the same way: exit 130 and a resume line.
"""

from __future__ import annotations

import contextlib
import signal
import threading


def interrupt(signum, frame) -> None:
    """SIGTERM outside Ray Tune's loop: stop as Ctrl-C does."""
    raise KeyboardInterrupt


def _stop_tune(signum, frame) -> None:
    """SIGTERM inside Ray Tune's loop: let it stop and save the experiment as on Ctrl-C (its SIGUSR1 handler)."""
    tune_handler = signal.getsignal(signal.SIGUSR1)
    if callable(tune_handler):
        tune_handler(signum, frame)
    else:  # Tune has not installed it yet
        raise KeyboardInterrupt


@contextlib.contextmanager
def signal_handlers(handlers: dict):
    """Install signal handlers for the block (main thread only), then put back the ones that were there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def tune_stops_on_sigterm():
    """During one Tuner.fit(): SIGTERM stops Ray Tune as Ctrl-C does. Afterwards Tune's own SIGINT and SIGUSR1
    handlers, which it leaves installed, are removed: a Ctrl-C later (testing the best model, say) interrupts
    at once instead of setting the flag of a loop that has ended."""
    return signal_handlers({signal.SIGTERM: _stop_tune, signal.SIGINT: signal.default_int_handler, signal.SIGUSR1: signal.SIG_DFL})
