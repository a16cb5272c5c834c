"""The experiment folder `<storage>/<name>` on a local disk or remote storage: what a study was started
with, whether it exists, whether it can resume, and whole-file writes that readers never see half of.

Storage is a local path or a URI (s3://, gs://, ...), as Ray allows; files go through pyarrow's
file systems, as Ray's own do.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path

import pyarrow.fs

from study.config import STUDY_FILE, experiment_path
from study.errors import UserError
from study.files import write_atomically


def _resolve(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    return pyarrow.fs.FileSystem.from_uri(location if "://" in location else str(Path(location).resolve()))


def exists(location: str) -> bool:
    filesystem, path = _resolve(location)
    return filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def write_text(location: str, text: str) -> None:
    """Write a whole file: on a local disk with the one atomic writer, elsewhere under a temporary name, then moved."""
    if "://" not in location:
        write_atomically(Path(location), text)
        return
    filesystem, path = _resolve(location)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    partial = f"{path}.partial"
    with filesystem.open_output_stream(partial) as stream:
        stream.write(text.encode())
    filesystem.move(partial, path)


def read_bytes(location: str) -> bytes:
    filesystem, path = _resolve(location)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def read_text(location: str) -> str:
    return read_bytes(location).decode()


def file_names(location: str) -> list[str]:
    """The names of the files directly in the folder `location` (none when it does not exist)."""
    filesystem, path = _resolve(location)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return [info.base_name for info in infos if info.type == pyarrow.fs.FileType.File]


def check_storage_writable(storage: str) -> None:
    """Fail early, with the reason, when --storage cannot hold an experiment."""
    try:
        filesystem, path = _resolve(storage)
        filesystem.create_dir(path, recursive=True)
        if filesystem.get_file_info(path).type != pyarrow.fs.FileType.Directory:
            raise NotADirectoryError(f"{storage} is not a folder")
        probe = f"{path}/.snn-study-write-probe"
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"")
        filesystem.delete_file(probe)
    except (OSError, pyarrow.ArrowException) as error:
        raise UserError(f"--storage {storage} cannot hold experiments: {error}.") from None


@contextlib.contextmanager
def one_driver(storage: str, name: str):
    """Hold the experiment for this driver: a second driver (the same command in another terminal, or a
    --resume typed while the study still runs) would train the same trials twice into the same folders.

    The lock is `<storage>/.<name>.lock`, beside the experiment folder rather than in it: taken before the
    experiment is checked and started, it is never replaced (study.json is, by atomic renames), and a study
    refused before it starts leaves no experiment folder behind. The OS releases it when the driver dies,
    even by SIGKILL. Remote storage (a URI) has no such lock: there it is up to the user.
    """
    if "://" in storage:
        yield
        return
    path = Path(storage) / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as held:  # created if absent, never truncated
        try:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"The experiment {name!r} under {storage} is being run by another process right now (it holds "
                f"{path}). Wait for it to end, or stop it (Ctrl-C) and then --resume; nothing was changed."
            ) from None
        try:
            yield
        finally:
            if not Path(experiment_path(storage, name)).exists():  # refused before it started: leave nothing behind
                path.unlink(missing_ok=True)


def check_new(storage: str, name: str) -> None:
    if exists(experiment_path(storage, name)):
        raise UserError(
            f"An experiment {name!r} already exists under {storage}. "
            f"Continue it with --resume, or choose another --name; nothing was changed."
        )


def save_study(storage: str, name: str, record: dict) -> None:
    write_text(f"{experiment_path(storage, name)}/{STUDY_FILE}", json.dumps(record, indent=2) + "\n")


def load_study(storage: str, name: str) -> dict:
    """The record of an experiment to resume, after checking that Ray Tune can restore it."""
    from ray import tune

    path = experiment_path(storage, name)
    if not exists(f"{path}/{STUDY_FILE}"):
        raise UserError(f"--resume: there is no experiment {name!r} under {storage} (no {STUDY_FILE} in {path}).")
    if not tune.Tuner.can_restore(path):
        raise UserError(
            f"--resume: the experiment {name!r} under {storage} stopped before Ray Tune saved any state, "
            f"so there is nothing to resume. Start it again under another --name (or remove {path})."
        )
    try:
        return json.loads(read_text(f"{path}/{STUDY_FILE}"))
    except (OSError, ValueError) as error:
        raise UserError(f"--resume: {path}/{STUDY_FILE} cannot be read ({error}).") from None
