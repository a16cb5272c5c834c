"""Small learnable data sets written in each dataset's real on-disk format.

Used by the tests and by `--synthetic`, so the whole pipeline runs, through the real loaders,
on a machine without the data. Every class is a fixed pattern of blobs; samples jitter, scale
and (for events) move it, so networks can learn the classes but not trivially.
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import numpy as np
import tonic

from study.data.sources import COMPLETE_MARKER, SYNTHETIC_MARKER
from study.files import write_atomically

SEED = 1234
# Bump when a writer below, or the sizes study.registry asks of it, change: older data is then written again.
GENERATOR_VERSION = 3
# What each writer writes under the root (removed before data of a newer version is written).
DATASET_FOLDERS = {"mnist": ("MNIST",), "nmnist": ("NMNIST",), "dvsgesture": ("DVSGesture",)}


def class_templates(num_classes: int, size: int, seed: int = SEED) -> np.ndarray:
    """[num_classes, size, size] patterns in [0, 1]: four Gaussian blobs per class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    templates = np.zeros((num_classes, size, size))
    margin, sigma = size // 5, size / 11
    for label in range(num_classes):
        for cx, cy in rng.uniform(margin, size - margin, size=(4, 2)):
            templates[label] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return templates / templates.max(axis=(1, 2), keepdims=True)


def _jittered(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shifted = np.roll(template, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
    return np.clip(shifted * rng.uniform(0.7, 1.0) + rng.uniform(0, 0.15, size=template.shape), 0, 1)


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the contents of a .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _mark(folder: Path) -> None:
    (folder / COMPLETE_MARKER).touch()


# ---- MNIST: idx files under <root>/MNIST/raw -------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format: zero, type code 0x08 (uint8), number of dimensions, big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    write_atomically(path, header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(root: Path, train_per_class: int, test_per_class: int, seed: int = SEED) -> None:
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    templates = class_templates(10, 28)
    rng = np.random.default_rng(seed)
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.tile(np.arange(10), per_class)
        images = np.stack([_jittered(templates[label], rng) for label in labels]) * 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images.round())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


# ---- N-MNIST: 5-byte events in <root>/NMNIST/{Train,Test}/<digit>/<n>.bin --------------------

def encode_nmnist_events(x: np.ndarray, y: np.ndarray, p: np.ndarray, t_us: np.ndarray) -> bytes:
    """N-MNIST's event format: x, y, then polarity (bit 7) and a 23-bit microsecond timestamp."""
    raw = np.empty((len(x), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p.astype(np.uint32) << 7) | ((t_us >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t_us >> 8) & 0xFF, t_us & 0xFF
    return raw.tobytes()


def _saccade_events(image: np.ndarray, rng: np.random.Generator, n_events: int, sensor: int) -> tuple:
    """Events of a static image seen through N-MNIST's three 100 ms saccades (a triangle path)."""
    t_us = np.sort(rng.integers(0, 300_000, size=n_events)).astype(np.uint32)
    phase = t_us / 100_000.0  # 0..3, one unit per saccade
    corners = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])
    leg = np.minimum(phase.astype(int), 2)
    offset = corners[leg] + (corners[leg + 1] - corners[leg]) * (phase - leg)[:, None]
    pixels = rng.choice(image.size, size=n_events, p=(image / image.sum()).ravel())
    py, px = np.unravel_index(pixels, image.shape)
    border = (sensor - image.shape[0] - 7) // 2
    x = np.clip(px + border + offset[:, 0].round().astype(int), 0, sensor - 1)
    y = np.clip(py + border + offset[:, 1].round().astype(int), 0, sensor - 1)
    return x, y, rng.integers(0, 2, size=n_events), t_us


def write_nmnist(root: Path, train_per_class: int, test_per_class: int, seed: int = SEED) -> None:
    sensor = tonic.datasets.NMNIST.sensor_size[0]
    templates = class_templates(10, 24)
    rng = np.random.default_rng(seed)
    for folder, per_class in (("Train", train_per_class), ("Test", test_per_class)):
        split = Path(root) / "NMNIST" / folder
        for label in range(10):
            digit = split / str(label)
            digit.mkdir(parents=True, exist_ok=True)
            for number in range(per_class):
                events = _saccade_events(_jittered(templates[label], rng), rng, 600, sensor)
                write_atomically(digit / f"{number:05d}.bin", encode_nmnist_events(*events))
        _mark(split)


# ---- DVS Gesture: [x, y, p, t_ms] rows in <root>/DVSGesture/ibmGesture*/userNN_<lighting>/<class>.npy

LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
GESTURE_MS = 1500  # the length of one synthetic gesture


def _gesture_events(label: int, num_classes: int, rng: np.random.Generator, n_events: int) -> np.ndarray:
    """A blob moving along half a circle around the sensor centre. Classes 2k and 2k+1 share the arc and
    run it in opposite directions, like the real set's clockwise and counter-clockwise arm rotations:
    their events summed over time look alike, so only the order of the events tells them apart. With an
    odd number of classes the last one has an arc of its own."""
    sensor = tonic.datasets.DVSGesture.sensor_size[0]
    arc, backwards = divmod(label, 2)
    arcs = (num_classes + 1) // 2
    t_ms = np.sort(rng.uniform(0, GESTURE_MS, size=n_events))
    progress = t_ms / GESTURE_MS
    if backwards:
        progress = 1.0 - progress
    angle = 2 * np.pi * arc / arcs + rng.normal(0, 0.15) + np.pi * progress
    radius = sensor * 0.3 * rng.uniform(0.85, 1.15)
    x = sensor / 2 + radius * np.cos(angle) + rng.normal(0, 4, n_events)
    y = sensor / 2 + radius * np.sin(angle) + rng.normal(0, 4, n_events)
    events = np.stack([x, y, rng.integers(0, 2, n_events), t_ms], axis=1).round()
    events[:, :2] = np.clip(events[:, :2], 0, sensor - 1)
    return events.astype(np.int32)


# Real DVS Gesture: users 1-23 train, 24-29 test, each recorded under up to five lightings.
USERS = {"ibmGestureTrain": range(1, 24), "ibmGestureTest": range(24, 30)}


def write_dvsgesture(root: Path, train_per_class: int, test_per_class: int, seed: int = SEED) -> None:
    num_classes = len(tonic.datasets.DVSGesture.classes)
    rng = np.random.default_rng(seed)
    for folder, per_class in (("ibmGestureTrain", train_per_class), ("ibmGestureTest", test_per_class)):
        split, users = Path(root) / "DVSGesture" / folder, USERS[folder]
        if per_class > len(users) * len(LIGHTINGS):
            raise ValueError(f"{folder} holds at most {len(users) * len(LIGHTINGS)} recordings of each gesture")
        for recording in range(per_class):  # one file per gesture class per recording, as in the real set
            user = split / f"user{users[recording % len(users)]:02d}_{LIGHTINGS[recording // len(users)]}"
            user.mkdir(parents=True, exist_ok=True)
            for label in range(num_classes):
                write_atomically(user / f"{label}.npy", npy_bytes(_gesture_events(label, num_classes, rng, 1500)))
        _mark(split)


def ensure_synthetic(dataset: str, root: Path, writer, train_per_class: int, test_per_class: int) -> Path:
    """Write `dataset` with `writer` under `root` unless this generator version already did, and mark the root synthetic.

    Data of an older generator is written again (its folders first removed), and the root's decoded
    event stores are dropped with it (a store is keyed by folder and sample count).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_atomically(root / SYNTHETIC_MARKER, "Generated by study.data.synthetic: not real data.\n")
    done = root / f".{dataset}-written-v{GENERATOR_VERSION}"
    if not done.exists():
        for older in root.glob(f".{dataset}-written*"):
            older.unlink()
            shutil.rmtree(root / "cache", ignore_errors=True)
            for folder in DATASET_FOLDERS[dataset]:
                shutil.rmtree(root / folder, ignore_errors=True)
        writer(root, train_per_class, test_per_class)
        done.touch()
    return root
