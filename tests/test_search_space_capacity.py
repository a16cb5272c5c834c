"""Every depth the search proposes fits the input that fixed values give, not only the first trial's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from search_spaces.common import as_hyperparams
from study.config import Hyperparams, StudySettings
from study.errors import UserError
from study.registry import build_model
from study.run import main
from study.search import check_search, fixed_values, space_of

SETTINGS = StudySettings("dvsgesture", "scnn", Path("data"), max_epochs=3)


@pytest.mark.parametrize("arch", ["cnn", "scnn"])
def test_a_small_fixed_frame_limits_the_searched_depth_to_what_fits(arch, capsys):
    """8x8 frames fit 3 blocks of the 2-4 searched: the first trial (2 blocks) always built, a later proposal
    of 4 raised inside its trial. Now the search proposes 2 or 3 and says so; every proposal builds."""
    settings = dataclasses.replace(SETTINGS, arch=arch)
    fixed = fixed_values("dvsgesture", None, ["frame_size=8"], (arch,))
    assert check_search(settings, fixed)["frame_size"] == 8
    assert f"{arch} on dvsgesture: a 8x8 input fits at most 3 convolution blocks" in capsys.readouterr().out
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    proposed = set()
    for _ in range(30):
        trial = study.ask()
        constants = space_of(settings, fixed)(trial)
        hp = Hyperparams.from_dict(as_hyperparams({**trial.params, **constants}))
        build_model("dvsgesture", arch, hp)  # raised a UserError for blocks=4
        proposed.add(hp.blocks)
        study.tell(trial, 0.0)
    assert proposed == {2, 3}


def test_the_frame_the_space_was_written_for_keeps_the_whole_depth_range(capsys):
    check_search(SETTINGS, {})
    assert "convolution block" not in capsys.readouterr().out
    trial = optuna.create_study().ask()
    space_of(SETTINGS, {})(trial)
    assert (trial.distributions["blocks"].low, trial.distributions["blocks"].high) == (2, 4)


@pytest.mark.parametrize(
    "fixes, says",
    [
        (["frame_size=2"], "scnn on dvsgesture: a 2x2 input fits at most 1 convolution block (each halves the frame), but the "
         "search proposes 2 to 4 blocks. Fix a depth that fits (--fix blocks=1; valid: 1) or use a larger frame_size."),
        (["frame_size=1"], "scnn on dvsgesture: a 1x1 input fits no convolution block (each halves the frame): use a larger frame_size."),
        (["frame_size=8", "blocks=4"], "blocks=4 do not fit a 8x8 input: each block halves the frame, so at most 3 fit (valid: 1 to 3)."),
        (["frame_size=1", "blocks=1"], "blocks=1 do not fit a 1x1 input: each block halves the frame, so at most 0 fit (a frame of at least 2x2 is needed for one block)."),
    ],
)
def test_a_fixed_frame_that_leaves_no_searched_depth_exits_2_before_any_trial(fixes, says, tmp_path, capsys):
    args = ["dvsgesture", "--arch", "scnn", "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")]
    assert main([*args, *(flag for fix in fixes for flag in ("--fix", fix))]) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not list((tmp_path / "results").glob("*"))  # no experiment was started
    assert not (tmp_path / "data").exists()  # nor its data written


def test_a_fixed_depth_is_not_searched_so_any_frame_that_fits_it_is_accepted():
    fixed = fixed_values("dvsgesture", None, ["frame_size=2", "blocks=1"])
    assert check_search(SETTINGS, fixed)["blocks"] == 1
    with pytest.raises(UserError, match="valid: 1"):
        check_search(SETTINGS, fixed_values("dvsgesture", None, ["frame_size=2"]))
