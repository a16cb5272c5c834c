"""Raw datasets on disk, read by the real loaders: torchvision's MNIST and tonic's N-MNIST / DVS Gesture.

Opening a split downloads it when absent, under a file lock so that parallel trials on
one node never download or extract the same files at once.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tonic
import torchvision
from filelock import FileLock

from study.data.event_checks import event_problem, gesture_rows_problem
from study.data.mnist_checks import check_mnist_files
from study.errors import UserError

# Written inside a split's folder once its files are complete (after our download, or by the
# synthetic generator). tonic alone counts a split as present only with its archive and at
# least 10000 (N-MNIST) / 100 (DVS Gesture) sample files.
COMPLETE_MARKER = ".snn-study-complete"
# Written at the data root by the synthetic generator; every output of a study on it says so.
SYNTHETIC_MARKER = "SYNTHETIC"
# What a failed download raises: no network (URLError is an OSError), torchvision's
# "Error downloading", a truncated archive.
DOWNLOAD_ERRORS = (OSError, RuntimeError, zipfile.BadZipFile, tarfile.TarError)


class _CheckedRecordings:
    """What our tonic datasets add: the completion marker, and every decoded recording checked against the sensor."""

    def _checked(self, sample: tuple[Any, Any]) -> tuple[Any, Any]:
        events, target = sample
        if (problem := event_problem(events, self.sensor_size)) is not None:
            raise ValueError(problem)
        return events, target

    def _check_exists(self) -> bool:
        return self._marker().exists() or super()._check_exists()

    def download(self) -> None:
        super().download()
        self._marker().touch()

    def _marker(self) -> Path:
        return Path(self.location_on_system, self.folder_name, COMPLETE_MARKER)


# The subclasses keep tonic's class names: tonic stores each dataset under <root>/<class name>.
class NMNIST(_CheckedRecordings, tonic.datasets.NMNIST):
    """tonic's N-MNIST, also present when our marker says the extracted folder is complete."""

    def __getitem__(self, index):
        # tonic silently misreads some truncated files; a file of partial events is corrupt.
        size = os.path.getsize(self.data[index])
        if size % 5:
            raise ValueError(f"{size} bytes is not a whole number of 5-byte events")
        return self._checked(super().__getitem__(index))


class DVSGesture(_CheckedRecordings, tonic.datasets.DVSGesture):
    """tonic's DVS Gesture with working download URLs.

    tonic 1.7.0's figshare `ndownloader` links now return an empty page (tonic PR #337);
    the API links below serve the same archives (same md5 sums).
    """

    train_url = "https://api.figshare.com/v2/file/download/38022171"
    test_url = "https://api.figshare.com/v2/file/download/38020584"

    def __getitem__(self, index):
        # Checked before tonic converts the table: its int16 x, y would wrap and its bool p hide any number.
        if (problem := gesture_rows_problem(np.load(self.data[index]), self.sensor_size)) is not None:
            raise ValueError(problem)
        return self._checked(super().__getitem__(index))


class MNIST(torchvision.datasets.MNIST):
    """torchvision's MNIST, its idx files checked before they are read (study.data.mnist_checks), as the event
    datasets check each recording when it is read. The class keeps torchvision's name: the files live under
    <root>/MNIST/raw. The check reads the headers and the labels only (60 kB for the training split)."""

    def _load_data(self):  # torchvision's one reader of the idx files, called after any download
        prefix = "train" if self.train else "t10k"
        raw = Path(self.raw_folder)
        images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
        check_mnist_files(images, labels, MNIST_SOURCE.shape[1:], len(self.classes))
        return super()._load_data()


@dataclass(frozen=True)
class RawSplit:
    """One split of a raw dataset: all labels up front, samples read on demand."""

    dataset: Any  # indexable: dataset[i] -> (sample, label)
    targets: np.ndarray  # [N] int64 class indices
    folder: Path  # where the split's files live (cache keys, messages)
    groups: np.ndarray | None = None  # [N] who recorded each sample (DVS Gesture's users); None when unknown

    def sample_file(self, index: int) -> str:
        """The file sample `index` is read from (tonic keeps one file per sample in `data`)."""
        files = getattr(self.dataset, "data", None)
        return str(files[index]) if isinstance(files, list) else f"sample {index} under {self.folder}"


@dataclass(frozen=True)
class Source:
    """How to find, download and read one dataset."""

    name: str
    kind: str  # "static" (images) or "events" (event streams turned into frames)
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # static: (C, H, W); events: tonic's sensor_size (W, H, P)
    layout: str  # the expected on-disk layout under the data root, for error messages
    loader: Any  # the dataset class
    recorded_by: Any = None  # sample file -> who recorded it, where the split's users matter (validation by user)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def input_shape(self, frame_size: int = 0) -> tuple[int, int, int]:
        """(C, H, W) of one time step as the models see it."""
        if self.kind == "static":
            return self.shape
        width, height, polarities = self.shape
        if frame_size:
            return (polarities, frame_size, frame_size)
        return (polarities, height, width)

    def open(self, root: Path, train: bool) -> RawSplit:
        """Open one split under `root`, downloading it first if absent (one process at a time)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f".{self.name}.lock")):
            try:
                return self._read(root, train)
            except DOWNLOAD_ERRORS as error:
                raise UserError(
                    f"The {self.name} {'training' if train else 'test'} split is not under {root} and could "
                    f"not be downloaded ({type(error).__name__}: {error}). Expected layout: {self.layout} "
                    f"Download it on a machine with network access and copy it there, pass --data-dir "
                    f"pointing at a folder that holds it, or try the pipeline with --synthetic."
                ) from None

    def _read(self, root: Path, train: bool) -> RawSplit:
        if self.kind == "static":  # torchvision: download=True is a no-op when the files are there
            dataset = self.loader(str(root), train=train, download=True)
            return RawSplit(dataset, dataset.targets.numpy().astype(np.int64), Path(dataset.raw_folder))
        dataset = self.loader(str(root), train=train)  # tonic downloads when its check fails
        folder = Path(dataset.location_on_system, dataset.folder_name)
        groups = np.asarray([self.recorded_by(path) for path in dataset.data]) if self.recorded_by else None
        return RawSplit(dataset, np.asarray(dataset.targets, dtype=np.int64), folder, groups)


def dvs_user(path: str) -> str:
    """The user who recorded a DVS Gesture file: `.../userNN_<lighting>/<class>.npy` -> `userNN`."""
    return Path(path).parent.name.split("_")[0]


MNIST_SOURCE = Source(
    name="mnist",
    kind="static",
    classes=tuple(torchvision.datasets.MNIST.classes),
    shape=(1, 28, 28),
    layout=(
        "<data-dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte "
        "(the idx files, unzipped; from the torchvision MNIST mirrors)."
    ),
    loader=MNIST,
)

NMNIST_SOURCE = Source(
    name="nmnist",
    kind="events",
    classes=tuple(tonic.datasets.NMNIST.classes),
    shape=tuple(tonic.datasets.NMNIST.sensor_size),
    layout=(
        "<data-dir>/NMNIST/{train.zip,test.zip} and the extracted <data-dir>/NMNIST/{Train,Test}/<digit>/*.bin "
        f"(5-byte events; archives from {tonic.datasets.NMNIST.base_url})."
    ),
    loader=NMNIST,
)

DVSGESTURE_SOURCE = Source(
    name="dvsgesture",
    kind="events",
    classes=tuple(tonic.datasets.DVSGesture.classes),
    shape=tuple(tonic.datasets.DVSGesture.sensor_size),
    layout=(
        "<data-dir>/DVSGesture/{ibmGestureTrain,ibmGestureTest}.tar.gz and the extracted "
        "<data-dir>/DVSGesture/{ibmGestureTrain,ibmGestureTest}/userNN_<lighting>/<class>.npy "
        f"([x, y, p, t_ms] rows; archives from {DVSGesture.train_url} and {DVSGesture.test_url})."
    ),
    loader=DVSGesture,
    recorded_by=dvs_user,
)
