"""The data path on files written in the real formats, read by the real torchvision / tonic loaders."""

from __future__ import annotations

import numpy as np
import pytest
import tonic
import torch
import torchvision

from study.config import StudySettings
from study.data.datasets import final_test_set, train_val_datasets
from study.data import events as events_module
from study.data.encoding import direct_current, rate_coded, to_model_input
from study.data.events import event_store
from study.data.frames import FrameSpec, batch_frames, frame_transform
from study.data.sources import COMPLETE_MARKER, DVSGESTURE_SOURCE, MNIST_SOURCE, NMNIST_SOURCE, RawSplit
from study.data.splits import balanced_subset, train_val_indices
from study.data.synthetic import encode_nmnist_events
from study.errors import UserError


def test_mnist_idx_files_read_by_torchvision(data_root):
    train = torchvision.datasets.MNIST(str(data_root), train=True, download=False)
    assert train.data.shape == (200, 28, 28) and train.data.dtype == torch.uint8
    assert sorted(torch.bincount(train.targets).tolist()) == [20] * 10
    assert train.data.float().std() > 10  # real images, not blank


def test_nmnist_event_encoding_round_trips_through_tonic(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 34, 50), rng.integers(0, 34, 50)
    p, t = rng.integers(0, 2, 50), np.sort(rng.integers(0, 2**23, 50)).astype(np.uint32)
    path = tmp_path / "sample.bin"
    path.write_bytes(encode_nmnist_events(x, y, p, t))
    events = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    np.testing.assert_array_equal(events["x"], x)
    np.testing.assert_array_equal(events["y"], y)
    np.testing.assert_array_equal(events["p"], p)
    np.testing.assert_array_equal(events["t"], t)


def test_nmnist_labels_come_from_the_digit_folders(data_root):
    split = NMNIST_SOURCE.open(data_root, train=True)
    assert len(split.targets) == 200
    for index in (0, 57, 199):
        assert split.dataset.data[index].split("/")[-2] == str(split.targets[index])
    events, label = split.dataset[57]
    assert label == split.targets[57] and len(events) > 100


def test_dvsgesture_labels_users_and_time_units(data_root):
    split = DVSGESTURE_SOURCE.open(data_root, train=True)
    assert len(split.targets) == 6 * 11
    assert sorted(set(split.dataset.users)) == [1, 2, 3, 4, 5, 6]
    events, label = split.dataset[5]
    assert label == split.targets[5]
    assert events["t"].max() > 1000 * 1000  # tonic turned the file's milliseconds into microseconds


def test_present_split_is_not_downloaded_again_though_tonic_alone_would(data_root, no_network):
    split = NMNIST_SOURCE.open(data_root, train=False)
    # tonic's own check wants the archive and >= 10000 files; our marker says the folder is complete.
    assert not tonic.datasets.NMNIST._check_exists(split.dataset)
    assert (split.folder / COMPLETE_MARKER).exists() and len(split.targets) == 50


@pytest.mark.parametrize("source", [MNIST_SOURCE, NMNIST_SOURCE, DVSGESTURE_SOURCE], ids=lambda s: s.name)
def test_absent_dataset_without_network_names_folder_and_layout(tmp_path, no_network, source):
    with pytest.raises(UserError) as raised:
        source.open(tmp_path / "empty", train=True)
    message = str(raised.value)
    assert str(tmp_path / "empty") in message
    assert source.layout in message


def test_validation_split_is_fixed_stratified_and_disjoint():
    targets = np.repeat(np.arange(10), 50)
    train, val = train_val_indices(targets, 0.1)
    again_train, again_val = train_val_indices(targets, 0.1)
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not set(train) & set(val) and len(train) + len(val) == 500
    assert np.bincount(targets[val]).tolist() == [5] * 10


def test_dvsgesture_validation_holds_out_whole_users_with_every_gesture(data_root):
    split = DVSGESTURE_SOURCE.open(data_root, train=True)
    train, val = train_val_indices(split.targets, 0.1, split.groups)
    assert set(split.groups[train]).isdisjoint(split.groups[val])  # as the test split's users are
    assert np.bincount(split.targets[val]).tolist() == [len(set(split.groups[val]))] * 11  # each user records each gesture once
    assert 0.05 <= len(val) / len(split.targets) <= 0.35
    again_train, again_val = train_val_indices(split.targets, 0.1, split.groups)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert MNIST_SOURCE.open(data_root, train=True).groups is None  # MNIST and N-MNIST: stratified by class, as before


def test_balanced_subset_takes_every_class_in_turn():
    targets = np.array([0] * 80 + [1] * 10 + [2] * 10)
    chosen = balanced_subset(targets, np.arange(100), 9)
    assert np.bincount(targets[chosen]).tolist() == [3, 3, 3]
    chosen = balanced_subset(targets, np.arange(100), 40)  # classes 1 and 2 run out: class 0 fills up
    assert np.bincount(targets[chosen]).tolist() == [20, 10, 10]
    assert balanced_subset(targets, np.arange(100), None).tolist() == list(range(100))


def test_frames_match_tonic_for_any_setting_from_one_decoding(data_root, tmp_path, monkeypatch):
    decoded = []
    real_decode = events_module._decode
    monkeypatch.setattr(events_module, "_decode", lambda *args: decoded.append(args[0].name) or real_decode(*args))
    for source, specs in ((NMNIST_SOURCE, [FrameSpec(7), FrameSpec(9)]), (DVSGESTURE_SOURCE, [FrameSpec(6, 32), FrameSpec(4)])):
        split = source.open(data_root, train=True)
        samples = np.array([3, 9, 0, 17])
        for spec in specs:  # a new T or frame size reuses the store: no raw file is read again
            store = event_store(source, split, tmp_path)
            frames = batch_frames(store, samples, spec, source)
            assert frames.shape == (4, spec.n_time_bins, *source.input_shape(spec.size)) and frames.dtype == torch.float32
            for row, index in enumerate(samples):
                expected = frame_transform(source, spec)(split.dataset[int(index)][0])
                np.testing.assert_array_equal(frames[row].numpy(), expected)
            assert frames.sum() > 0
    assert decoded == ["nmnist", "dvsgesture"]
    assert not list(tmp_path.glob("*.partial-*"))


def test_frames_of_short_and_empty_recordings_match_tonic(tmp_path):
    """Edge cases of ToFrame's binning: no events, all at one instant, fewer microseconds than bins."""
    dtype = tonic.datasets.NMNIST.dtype
    recordings = [
        np.zeros(0, dtype=dtype),
        np.array([(1, 2, 5, 1), (3, 4, 5, 0)], dtype=dtype),  # one instant: no window at all
        np.array([(1, 2, 0, 1), (3, 4, 3, 0), (5, 6, 4, 1)], dtype=dtype),  # 4 us over 5 bins
        np.array([(1, 2, 100, 1), (3, 4, 150, 0), (5, 6, 300, 1), (7, 8, 310, 1)], dtype=dtype),
    ]
    split = RawSplit([(events, 0) for events in recordings], np.zeros(4, dtype=np.int64), tmp_path)
    store = event_store(NMNIST_SOURCE, split, tmp_path / "cache")
    frames = batch_frames(store, np.arange(4), FrameSpec(5), NMNIST_SOURCE)
    for row, events in enumerate(recordings[1:], start=1):
        np.testing.assert_array_equal(frames[row].numpy(), frame_transform(NMNIST_SOURCE, FrameSpec(5))(events.copy()))
    assert frames[0].sum() == 0 and frames[3].sum() > 0


def test_dvsgesture_frames_are_downsampled(data_root):
    settings = StudySettings("dvsgesture", "scnn", data_root, 1, train_limit=22, val_limit=11)
    train, val = train_val_datasets(DVSGESTURE_SOURCE, settings, FrameSpec(6, size=32))
    frames, label = train[0]
    assert frames.shape == (6, 2, 32, 32) and frames.dtype == torch.float32
    assert frames.sum() > 1000  # nearly every event of the sample lands in a bin
    assert len(train) == 22 and len(val) == 11


def test_train_val_and_test_sets_for_static_images(data_root):
    train, val = train_val_datasets(MNIST_SOURCE, StudySettings("mnist", "cnn", data_root, 1, train_limit=50), FrameSpec(1))
    test = final_test_set(MNIST_SOURCE, StudySettings("mnist", "cnn", data_root, 1), FrameSpec(1))
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8  # bytes; the encoder scales them
    assert to_model_input(image[None], "static", False, 1, "direct").max() <= 1
    assert len(train) == 50 and len(val) == 20 and len(test) == 50
    assert sorted(np.bincount([int(train[i][1]) for i in range(50)]).tolist()) == [5] * 10


def test_encoders_and_model_inputs():
    torch.manual_seed(0)
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(to_model_input((images * 255).round().to(torch.uint8), "static", False, 1, "direct"), (images * 255).round() / 255)
    assert direct_current(images, 5).shape == (5, 4, 1, 28, 28)
    assert torch.equal(direct_current(images, 5)[3], images)
    spikes = rate_coded(images, 1000)  # 1000 draws: 0.15 is 9 standard deviations (200 left 4, and it failed at times)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(spikes.mean(0), images, atol=0.15)  # firing probability = intensity
    frames = torch.rand(4, 6, 2, 34, 34)
    assert to_model_input(frames, "events", True, 6, "direct").shape == (6, 4, 2, 34, 34)  # time-major
    assert to_model_input(frames, "events", False, 6, "direct").shape == (4, 12, 34, 34)  # the CNN: bins stacked as channels
    one_bin = frames.sum(1, keepdim=True)
    assert torch.equal(to_model_input(one_bin, "events", False, 1, "direct"), one_bin[:, 0].log1p())  # one bin: every event summed
    assert to_model_input(images, "static", False, 6, "rate").shape == (4, 1, 28, 28)
    assert to_model_input(images, "static", True, 6, "rate").shape == (6, 4, 1, 28, 28)


def test_loader_workers_deliver_the_same_batches_as_the_trial_itself(data_root):
    """A trial with more than one CPU loads in worker processes; the batches must not change."""
    from study.loop import make_loader

    assert [StudySettings("nmnist", "scnn", data_root, 1, cpus_per_trial=c).loader_workers for c in (1, 2, 3, 16)] == [0, 1, 2, 4]
    train, _ = train_val_datasets(NMNIST_SOURCE, StudySettings("nmnist", "scnn", data_root, 1, train_limit=40), FrameSpec(5))
    inline, workers = (list(make_loader(train, 16, shuffle=True, seed=3, workers=n)) for n in (0, 2))
    assert [len(targets) for _, targets in inline] == [16, 16, 8]
    for (frames, targets), (frames_w, targets_w) in zip(inline, workers, strict=True):
        assert torch.equal(targets, targets_w) and torch.equal(frames, frames_w)
