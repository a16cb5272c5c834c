"""What a study searches: its space with the values it fixes (a preset, `--fix`), its first trial, and the
checks that a bad name or a capacity that does not fit stop the study before any trial starts."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from typing import Any

from search_spaces.common import as_hyperparams, as_params, field_of
from study.config import Hyperparams, StudySettings
from study.errors import UserError, lookup
from study.ranges import check_hyperparams
from study.models.blocks import max_blocks
from study.registry import ARCHITECTURES, PRESETS, SEARCH_SPACES, build_model, hyperparams_of, model_input_shape

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
    """The define-by-run function Optuna calls: the study's space with its fixed values bound, and the depths
    it proposes limited to those the input fits (`depth_range`)."""
    ours = fixed_for(settings, fixed)
    depths = depth_range(settings.dataset, settings.arch, tuple(sorted(ours.items())))
    limits = {"blocks": depths.most} if depths is not None and depths.limited else {}
    return functools.partial(SEARCH_SPACES[(settings.dataset, settings.arch)].define, fixed=ours, limits=limits)


@dataclasses.dataclass(frozen=True)
class DepthRange:
    """The convolution blocks a space searches, against those its input fits (each block halves the frame)."""

    low: int  # the space's range
    high: int
    most: int  # the most blocks that fit the input the fixed values give
    input_size: tuple[int, int]

    @property
    def limited(self) -> bool:
        return self.most < self.high

    def describe(self) -> str:
        height, width = self.input_size
        return (
            f"a {height}x{width} input fits at most {self.most} convolution block{'s' if self.most != 1 else ''} "
            f"(each halves the frame)"
        )


@functools.lru_cache(maxsize=64)
def depth_range(dataset: str, arch: str, fixed: tuple[tuple[str, Any], ...]) -> DepthRange | None:
    """The depths the space of `arch` on `dataset` searches with these fixed values (sorted (name, value) pairs),
    and the most that fit: None when it searches no depth (fixed, or not a convolutional architecture).

    Every depth is checked against the input (the first trial fitting says nothing of a later proposal of 4
    blocks). A fixed value that leaves no searched depth, say `--fix frame_size=2` where 2 to 4 blocks are
    searched, is a UserError that names the depths that fit."""
    import optuna

    with quiet_optuna():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        asked = study.ask()
        constants = SEARCH_SPACES[(dataset, arch)].define(asked, fixed=dict(fixed))
    searched = asked.distributions.get("blocks")
    if searched is None:
        return None
    proposal = Hyperparams.from_dict(as_hyperparams({**asked.params, **constants}))
    size = model_input_shape(dataset, arch, proposal)[1:]
    depths = DepthRange(searched.low, searched.high, max_blocks(size), size)
    if depths.most == 0:
        raise UserError(f"{arch} on {dataset}: a {size[0]}x{size[1]} input fits no convolution block (each halves the frame): use a larger frame_size.")
    # One build, at a depth that fits, shows what else stops the model (a fixed pooling that does not exist).
    build_model(dataset, arch, dataclasses.replace(proposal, blocks=min(depths.low, depths.most)))
    fits = range(1, depths.most + 1)
    if depths.most < depths.low:
        raise UserError(
            f"{arch} on {dataset}: {depths.describe()}, but the search proposes {depths.low} to {depths.high} blocks. "
            f"Fix a depth that fits ({' or '.join(f'--fix blocks={blocks}' for blocks in fits)}; valid: "
            f"{', '.join(map(str, fits))}) or use a larger frame_size."
        )
    return depths


def first_trial(settings: StudySettings, fixed: dict) -> dict:
    """The space's first trial as Optuna will be asked it (Optuna's names, `lr_adam`): the values the space
    still searches, within their ranges.

    A fixed value can change which questions the space asks (fixing the optimizer changes the learning
    rate's range), so the first trial is replayed through the space and keeps what fits.
    """
    import optuna

    wanted = SEARCH_SPACES[(settings.dataset, settings.arch)].first_trial  # Hyperparams fields
    with quiet_optuna():
        study = optuna.create_study()
        study.enqueue_trial(as_params({name: value for name, value in wanted.items() if name not in fixed}), skip_if_exists=False)
        asked = study.ask()
        space_of(settings, fixed)(asked)
    return {
        name: value
        for name, value in asked.params.items()
        if field_of(name) in wanted
        and value == wanted[field_of(name)]
        and asked.distributions[name]._contains(asked.distributions[name].to_internal_repr(value))
    }


def check_search(settings: StudySettings, fixed: dict) -> dict:
    """The first trial's full config (Hyperparams fields), after building its model: a bad name or a capacity
    that does not fit is a UserError here, before any trial (and before the study's folder is written). Every
    depth the search proposes fits too (`depth_range`); where fixed values leave fewer depths, it says so."""
    import optuna

    check_names(Hyperparams.from_dict(fixed))  # the space looks fixed names up too (a learning-rate range per optimizer)
    check_hyperparams(Hyperparams.from_dict(fixed), "--fix")
    first = first_trial(settings, fixed)
    with quiet_optuna():
        study = optuna.create_study()
        study.enqueue_trial(first, skip_if_exists=False)
        asked = study.ask()
        constants = space_of(settings, fixed)(asked)
    config = as_hyperparams({**asked.params, **constants})
    try:
        hp = Hyperparams.from_dict(config)
    except (TypeError, ValueError) as error:
        raise UserError(f"The study's first trial is not a valid configuration: {error}.") from None
    check_names(hp)
    build_model(settings.dataset, settings.arch, hp)  # raises a UserError for a capacity that does not fit
    depths = depth_range(settings.dataset, settings.arch, tuple(sorted(fixed_for(settings, fixed).items())))
    if depths is not None and depths.limited:
        print(
            f"{settings.arch} on {settings.dataset}: {depths.describe()}, so the search proposes {depths.low} to "
            f"{depths.most} blocks (not up to {depths.high}).",
            flush=True,
        )
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
