"""What one recording's events must satisfy before they enter the event store: the dataset's own facts.

A damaged file of a plausible size decodes without an error: zero bytes give no event, random bytes
give coordinates off the sensor and timestamps out of order. Stored as they are, an event at x=200 on
N-MNIST's 34x34 sensor would be binned into the next sample of its batch (frames are flat arrays), a
coordinate of 1000 would wrap to 232 in the store's bytes, a timestamp out of order would fall before the
sample's first time bin. So every recording is checked against the sensor size, the polarities, time
order, finite values and its record length, and a file that fails is named with what is wrong with it.
"""

from __future__ import annotations

import numpy as np

GESTURE_COLUMNS = 4  # DVS Gesture's .npy rows: x, y, p, t in milliseconds
# tonic multiplies DVS Gesture's milliseconds by 1000 into int64 microseconds: a larger timestamp (1e300, say)
# overflows, with a numpy RuntimeWarning, into a negative one. A recording lasts seconds; this bound (about
# 11.6 days) keeps far clear of the overflow while refusing nothing a sensor could record.
GESTURE_MAX_MS = 1e9


def event_problem(events: np.ndarray, sensor_size: tuple[int, int, int]) -> str | None:
    """What is wrong with one recording's decoded events (structured x, y, p, t), None when nothing is."""
    width, height, polarities = sensor_size
    if len(events) == 0:
        return "it holds no event (an empty or blank recording)"
    x, y, p, t = (np.asarray(events[name]).astype(np.float64) for name in ("x", "y", "p", "t"))
    if not all(np.isfinite(values).all() for values in (x, y, p, t)):
        return "some of its values are not finite numbers (NaN or infinity)"
    fractional = (x != np.round(x)) | (y != np.round(y))
    if fractional.any():
        at = int(np.flatnonzero(fractional)[0])
        return (
            f"{int(fractional.sum())} of its {len(events)} events have coordinates that are not whole pixels "
            f"(e.g. event {at} at x={x[at]:g}, y={y[at]:g})"
        )
    outside = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    if outside.any():
        return (
            f"{int(outside.sum())} of its {len(events)} events lie off the {width}x{height} sensor "
            f"(x from {x.min():g} to {x.max():g}, y from {y.min():g} to {y.max():g})"
        )
    wrong = (p < 0) | (p >= polarities) | (p != np.round(p))
    if wrong.any():
        return f"{int(wrong.sum())} of its events have a polarity other than 0 to {polarities - 1} (e.g. {p[wrong][0]:g})"
    backwards = np.flatnonzero(np.diff(t) < 0)
    if len(backwards):
        at = int(backwards[0]) + 1
        return f"its events are not in time order (event {at} at t={t[at]:g} comes after one at t={t[at - 1]:g})"
    if t[0] < 0:
        return f"its first timestamp is negative ({t[0]:g})"
    return None


def gesture_rows_problem(rows: np.ndarray, sensor_size: tuple[int, int, int]) -> str | None:
    """What is wrong with a DVS Gesture .npy table before tonic converts it (its int16 coordinates would wrap
    and its boolean polarity would turn any number into 1), None when nothing is."""
    if rows.ndim != 2 or rows.shape[1] != GESTURE_COLUMNS:
        return f"it holds an array of shape {rows.shape}, not rows of {GESTURE_COLUMNS} values (x, y, p, t in ms)"
    if rows.dtype.kind not in "iuf":
        return f"it holds {rows.dtype} values, not numbers"
    x, y, p, t = rows.T
    if len(rows) and np.isfinite(t).all() and np.abs(t).max() > GESTURE_MAX_MS:
        at = int(np.argmax(np.abs(t)))
        return (
            f"its timestamp {t[at]:g} ms (event {at}) lies beyond any recording: timestamps must lie from 0 to "
            f"{GESTURE_MAX_MS:g} ms"
        )
    return event_problem(np.rec.fromarrays([x, y, p, t], names="x,y,p,t"), sensor_size)
