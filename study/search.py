"""What a study searches: its space with the values it fixes (a preset, `--fix`), its first trial, and the
checks that a bad name or a capacity that does not fit stop the study before any trial starts."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from typing import Any

from study.config import Hyperparams, StudySettings
from study.errors import UserError, lookup
from study.ranges import check_hyperparams
from study.registry import ARCHITECTURES, PRESETS, SEARCH_SPACES, build_model, hyperparams_of

TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


KIND_WORDS = {"int": "a whole number", "float": "a number", "str": "a name", "bool": "true or false"}


def parse_value(name: str, text: str) -> Any:
    """`text` as the type of the Hyperparams field `name` (`--fix readout=membrane_max`, `--fix blocks=3`)."""
    fields = {field.name: field for field in dataclasses.fields(Hyperparams)}
    field = lookup(fields, name, "hyperparameter")
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "bool":
            if text.lower() not in TRUE + FALSE:
                raise ValueError(f"{text!r} is not true or false")
            return text.lower() in TRUE
        return {"int": int, "float": float, "str": str}[kind](text)
    except ValueError as error:
        raise UserError(f"--fix {name}={text}: {name} takes {KIND_WORDS[kind]} ({error}).") from None


def fixed_values(dataset: str, preset: str | None, fixes: list[str], archs: tuple[str, ...] = tuple(ARCHITECTURES)) -> dict:
    """The hyperparameters the study fixes: the preset's, then each `--fix NAME=VALUE` (which wins).
    A `--fix` that no architecture of the study reads is refused: it would change nothing, silently."""
    fixed = {}
    if preset is not None:
        ours = {name: entry for name, entry in PRESETS.items() if entry.dataset == dataset}
        if preset not in ours:
            listing = "; ".join(f"{name}: {entry.about}" for name, entry in ours.items()) or "none"
            raise UserError(f"Unknown preset {preset!r} for {dataset}. Presets for {dataset}: {listing}.")
        fixed.update(ours[preset].values)
    for fix in fixes:
        name, equals, text = fix.partition("=")
        if not equals or not name:
            raise UserError(f"--fix {fix!r}: write NAME=VALUE, e.g. --fix readout=membrane_max.")
        name = name.strip()
        fixed[name] = parse_value(name, text.strip())
        if not any(name in hyperparams_of(dataset, arch) for arch in archs):
            readers = [arch for arch in ARCHITECTURES if name in hyperparams_of(dataset, arch)]
            verb = "reads" if len(readers) == 1 else "read"
            where = f"only {' and '.join(readers)} on {dataset} {verb} it" if readers else f"no architecture reads it on {dataset}"
            raise UserError(f"--fix {fix}: {name} does not apply to {' or '.join(archs)} ({where}), so fixing it would change nothing.")
    return fixed


def fixed_for(settings: StudySettings, fixed: dict) -> dict:
    """The fixed values one architecture's trials read: a comparison's --fix beta=0.9 is not in its CNN's configs."""
    applies = hyperparams_of(settings.dataset, settings.arch)
    return {name: value for name, value in fixed.items() if name in applies}


def space_of(settings: StudySettings, fixed: dict):
    """The define-by-run function Optuna calls: the study's space with its fixed values bound."""
    return functools.partial(SEARCH_SPACES[(settings.dataset, settings.arch)].define, fixed=fixed_for(settings, fixed))


def first_trial(settings: StudySettings, fixed: dict) -> dict:
    """The space's first trial as Optuna will be asked it: the values the space still searches, within their ranges.

    A fixed value can change which questions the space asks (fixing the optimizer changes the learning
    rate's range), so the first trial is replayed through the space and keeps what fits.
    """
    import optuna

    wanted = SEARCH_SPACES[(settings.dataset, settings.arch)].first_trial
    with quiet_optuna():
        study = optuna.create_study()
        study.enqueue_trial({name: value for name, value in wanted.items() if name not in fixed}, skip_if_exists=False)
        asked = study.ask()
        space_of(settings, fixed)(asked)
    return {
        name: value
        for name, value in asked.params.items()
        if name in wanted and value == wanted[name] and asked.distributions[name]._contains(asked.distributions[name].to_internal_repr(value))
    }


def check_search(settings: StudySettings, fixed: dict) -> dict:
    """The first trial's full config, after building its model: a bad name or a capacity that does not fit
    is a UserError here, before any trial (and before the study's folder is written)."""
    import optuna

    check_names(Hyperparams.from_dict(fixed))  # the space looks fixed names up too (a learning-rate range per optimizer)
    check_hyperparams(Hyperparams.from_dict(fixed), "--fix")
    first = first_trial(settings, fixed)
    with quiet_optuna():
        study = optuna.create_study()
        study.enqueue_trial(first, skip_if_exists=False)
        asked = study.ask()
        constants = space_of(settings, fixed)(asked)
    config = {**asked.params, **constants}
    try:
        hp = Hyperparams.from_dict(config)
    except (TypeError, ValueError) as error:
        raise UserError(f"The study's first trial is not a valid configuration: {error}.") from None
    check_names(hp)
    build_model(settings.dataset, settings.arch, hp)  # raises a UserError for a capacity that does not fit
    return config


def check_names(hp: Hyperparams) -> None:
    """Every name a trial looks up exists (optimizer, surrogate, encoding; readout, pooling and reset are checked by the model)."""
    from study.data.encoding import ENCODERS
    from study.loop import OPTIMIZERS
    from study.models.lif_scan import SURROGATES

    lookup(OPTIMIZERS, hp.optimizer, "optimizer")
    lookup(SURROGATES, hp.surrogate, "surrogate")
    lookup(ENCODERS, hp.encoding, "encoding")


@contextlib.contextmanager
def quiet_optuna():
    """Optuna logs every study it creates and warns about experimental options; the tool states its choices itself."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
