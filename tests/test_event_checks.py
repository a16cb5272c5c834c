"""Damaged event files of a plausible size are refused when decoded, naming the file and what is wrong;
no event ever lands in another sample's frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from study.data.events import EventStore, event_dtype, event_store
from study.data.frames import FrameSpec, batch_frames
from study.data.sources import DVSGESTURE_SOURCE, NMNIST_SOURCE
from study.data.synthetic import encode_nmnist_events, npy_bytes
from study.errors import UserError


def _nmnist(x, y, p, t) -> bytes:
    return encode_nmnist_events(*(np.asarray(values, dtype=np.uint32) for values in (x, y, p, t)))


def _random_bytes(size: int) -> bytes:
    return np.random.default_rng(0).integers(0, 256, size=size, dtype=np.uint8).tobytes()


NMNIST_DAMAGE = {
    "empty": (lambda good: b"", "holds no event"),
    "random bytes of the right length": (lambda good: _random_bytes(len(good)), "lie off the 34x34 sensor"),
    "off the sensor": (lambda good: _nmnist([3, 200], [4, 250], [0, 1], [10, 20]), "1 of its 2 events lie off the 34x34 sensor"),
    "out of time order": (lambda good: _nmnist([3, 4, 5], [4, 5, 6], [0, 1, 0], [10, 30, 20]), "not in time order (event 2 at t=20"),
}

GESTURE_DAMAGE = {
    "x of 1000": (np.array([[1000, 5, 0, 1.0], [3, 4, 1, 2.0]]), "1 of its 2 events lie off the 128x128 sensor (x from 3 to 1000"),
    "y of -5": (np.array([[10, -5, 0, 1.0], [3, 4, 1, 2.0]]), "lie off the 128x128 sensor"),
    "NaN timestamps": (np.array([[10, 5, 0, np.nan], [3, 4, 1, 2.0]]), "not finite"),
    "polarity 5": (np.array([[10, 5, 5, 1.0], [3, 4, 1, 2.0]]), "a polarity other than 0 to 1 (e.g. 5)"),
    "three columns": (np.array([[10, 5, 1.0], [3, 4, 2.0]]), "not rows of 4 values"),
    "no rows": (np.zeros((0, 4)), "holds no event"),
    "out of time order": (np.array([[10, 5, 0, 9.0], [3, 4, 1, 2.0]]), "not in time order"),
    "fractional x": (np.array([[10.5, 5, 0, 1.0], [3, 4, 1, 2.0]]), "1 of its 2 events have coordinates that are not whole pixels (e.g. event 0 at x=10.5, y=5)"),
    # tonic's ms -> us int64 conversion overflowed this to -9.2e18 (with a RuntimeWarning): "not in time order"
    "a timestamp of 1e300": (np.array([[10, 5, 0, 1.0], [3, 4, 1, 1e300]]), "its timestamp 1e+300 ms (event 1) lies beyond any recording: timestamps must lie from 0 to 1e+09 ms"),
}


@pytest.fixture
def nmnist_test_split(data_root, tmp_path) -> Path:
    shutil.copytree(data_root / "NMNIST", tmp_path / "NMNIST")
    return tmp_path


@pytest.mark.parametrize("damage", NMNIST_DAMAGE)
def test_a_damaged_nmnist_file_of_plausible_size_is_named_with_its_problem(damage, nmnist_test_split, tmp_path):
    split = NMNIST_SOURCE.open(nmnist_test_split, train=False)
    damaged = Path(split.dataset.data[10])
    write, says = NMNIST_DAMAGE[damage]
    damaged.write_bytes(write(damaged.read_bytes()))
    with pytest.raises(UserError) as refused:
        event_store(NMNIST_SOURCE, split, tmp_path / "cache")
    assert f"Cannot read {damaged} (ValueError: " in str(refused.value) and says in str(refused.value)
    assert not list((tmp_path / "cache").glob("*-offsets.npy"))  # no store that a trial could load


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a value numpy cannot convert is named, not warned about
@pytest.mark.parametrize("damage", GESTURE_DAMAGE)
def test_a_damaged_dvsgesture_file_is_named_with_its_problem(damage, data_root, tmp_path):
    shutil.copytree(data_root / "DVSGesture", tmp_path / "DVSGesture")
    split = DVSGESTURE_SOURCE.open(tmp_path, train=False)
    damaged = Path(split.dataset.data[3])
    rows, says = GESTURE_DAMAGE[damage]
    damaged.write_bytes(npy_bytes(rows))
    with pytest.raises(UserError) as refused:
        event_store(DVSGESTURE_SOURCE, split, tmp_path / "cache")
    assert f"Cannot read {damaged} (ValueError: " in str(refused.value) and says in str(refused.value)


def test_no_event_lands_in_another_sample_even_from_a_damaged_store(tmp_path):
    """A store written before events were checked (or damaged since) cannot move events between samples."""
    dtype = event_dtype(NMNIST_SOURCE)
    first = np.array([(3, 4, 0, 0), (200, 250, 1, 5), (5, 6, 1, 7), (6, 6, 0, 10)], dtype=dtype)  # one event off the sensor
    second = np.array([(1, 1, 0, 0), (9, 9, 0, -3), (2, 2, 1, 6), (3, 3, 0, 10)], dtype=dtype)  # one before its first bin
    path = tmp_path / "events.bin"
    path.write_bytes(first.tobytes() + second.tobytes())
    store = EventStore(path, dtype, np.array([0, len(first), len(first) + len(second)]))
    frames = batch_frames(store, np.array([0, 1]), FrameSpec(2), NMNIST_SOURCE)  # [B, T, P, H, W]; windows of 5 us
    # Each sample keeps its own events in the sensor and the time bins; the last event of each is past them (as in tonic).
    assert frames[0, 0, 0, 4, 3] == 1 and frames[0, 1, 1, 6, 5] == 1 and frames[0].sum() == 2
    assert frames[1, 0, 0, 1, 1] == 1 and frames[1, 1, 1, 2, 2] == 1 and frames[1].sum() == 2
