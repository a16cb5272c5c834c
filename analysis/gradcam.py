"""Grad-CAM maps, with the unmodified pytorch-grad-cam package: `python -m analysis.gradcam CHECKPOINT`.

CNN: the standard Grad-CAM of the last convolutional block (its ReLU output, 4x4 on MNIST).

Spiking models: pytorch-grad-cam wants one 4-D input and one `[B, classes]` output, and it builds
the map from the *first* call of its target layer only; a layer run once per time step (or, on a
CPU, over chunks of steps, see `study.models.common.fold_time`) would silently give the map of
the first step(s). So `SpikeCountScores` wraps the model:
- input: the frames packed as `[B, T*C, H, W]`; output: the model's own scores, output spike
  counts per class (population-coded outputs: the population's spikes summed per class), the
  numbers the loss trains and the decision is taken on;
- the explained activations are the spikes a spiking layer sends to a stateless reader
  (spiking CNN: the last convolutional LIF layer `lif2`, read by `fc`; spiking LSTM: the spikes of
  the SConv2dLSTM, read by `project`). A first pass records them for every step; the target layer
  `probe` is then called once on all of them, folded `[T*B, C', h, w]`, and a pre-hook hands the
  reader those same values (checked) call by call, so the gradient of every step reaches the one call.
  The SConv2dLSTM's internal convolution is not the target: it runs once per step on the input
  joined with the recurrent state, so its activations mix in the previous steps; its spike output
  feeds nothing but the projection, so its gradient is that spike map's whole effect on the score.
- pytorch-grad-cam runs the wrapper, back-propagates the target class and records the probe's
  activations and gradients; its `get_cam_image` weights each step's channels by their
  spatially averaged gradients. Its own output would scale every step's map separately, so the
  steps are combined here: per-step map = ReLU of that step's weighted spike maps, all steps of a
  sample on one scale (quiet steps look quiet); time-summed map = the sum of the per-step maps.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.cm import ScalarMappable
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from analysis.animation import Prerendered, prerendered, save_animation, step_fps
from analysis.artifacts import Artifact, save_figure
from analysis.checkpoint_cli import run_cli
from analysis.samples import (
    Loaded,
    pictures,
    scaled_per_sample,
    sequence_samples,
    short_name,
    shown_steps_note,
    step_columns,
    step_pictures,
)
from study.models import Output

SECTION = "Grad-CAM"
TITLE_WIDTH = 17


class _Substitute:
    """Forward pre-hook: gives the reader, call by call, the rows of `features` equal to its own input."""

    def __init__(self, features: torch.Tensor):
        self.features, self.used = features, 0

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        actual = args[0]
        rows = self.features[self.used : self.used + actual.shape[0]]
        if rows.numel() != actual.numel() or not torch.equal(rows.detach().reshape(actual.shape), actual):
            raise RuntimeError("the second pass of the spiking model differs from the first (is it in eval mode?)")
        self.used += actual.shape[0]
        return (rows.reshape(actual.shape), *args[1:])


class SpikeCountScores(nn.Module):
    """A spiking model as pytorch-grad-cam needs it: frames `[B, T*C, H, W]` -> spike counts `[B, classes]`.

    `spikes`: the spikes the reader reads, `[T, B, C', h, w]`, from a first pass over the same frames.
    """

    def __init__(self, model: nn.Module, spikes: torch.Tensor):
        super().__init__()
        self.model, self.steps = model, spikes.shape[0]
        self.reader = getattr(model, model.explained_spikes.reader)
        self.recorded = spikes.flatten(0, 1).detach()  # [T*B, C', h, w]
        self.probe = nn.Identity()  # the Grad-CAM target layer: called once, on every step's spikes

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        x = packed.unflatten(1, (self.steps, -1)).transpose(0, 1)  # [B, T*C, H, W] -> [T, B, C, H, W]
        features = self.probe(self.recorded.clone().requires_grad_())
        feed = _Substitute(features)
        handle = self.reader.register_forward_pre_hook(feed)
        try:
            scores = self.model(x)
        finally:
            handle.remove()
        if feed.used != len(features):
            raise RuntimeError(f"the reader read {feed.used} of {len(features)} rows of spikes")
        return scores


def pack(inputs: torch.Tensor) -> torch.Tensor:
    return inputs.transpose(0, 1).flatten(1, 2)  # [T, B, C, H, W] -> [B, T*C, H, W]


def cnn_cam(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    """Grad-CAM of the CNN's last convolutional block for `classes`: [B, H, W] in [0, 1]."""
    with GradCAM(model, target_layers=[model.gradcam_layer]) as cam:
        return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(int(c)) for c in classes])


def spiking_cam(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor, output: Output | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of a spiking model for `classes`: time-summed [B, H, W] and per step [B, T, H, W], in [0, 1].

    `output`: the model's forward pass over `inputs`, when already at hand.
    """
    if output is None:
        with torch.no_grad():
            output = model.run(inputs)
    steps, height, width = inputs.shape[0], inputs.shape[-2], inputs.shape[-1]
    wrapper = SpikeCountScores(model, output.spikes[model.explained_spikes.spikes])
    packed = pack(inputs)
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    with GradCAM(wrapper, target_layers=[wrapper.probe]) as cam:
        cam(input_tensor=packed, targets=targets)  # its maps are scaled step by step: only the recordings are used
        recorded = cam.activations_and_grads
        raw = cam.get_cam_image(packed, wrapper.probe, targets, recorded.activations[0].numpy(), recorded.gradients[0].numpy())
    raw = torch.from_numpy(np.maximum(raw, 0)).float().unflatten(0, (steps, -1)).transpose(0, 1)  # [T*B, h, w] -> [B, T, h, w]
    per_step = F.interpolate(raw, size=(height, width), mode="bilinear", align_corners=False)
    summed = per_step.sum(1)  # [B, H, W]
    return scaled_per_sample(summed).numpy(), scaled_per_sample(per_step).numpy()


def overlay(picture: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """A grey picture [H, W] with a Grad-CAM map on top, RGB uint8."""
    return show_cam_on_image(np.repeat(picture[..., None], 3, axis=-1).astype(np.float32), cam, use_rgb=True)


def _cam_colorbar(figure: plt.Figure, axes) -> None:
    colorbar = figure.colorbar(ScalarMappable(cmap="jet"), ax=axes, shrink=0.8, pad=0.02)
    colorbar.set_label("Grad-CAM / sample maximum")


def sample_title(loaded: Loaded, index: int, predicted: torch.Tensor) -> tuple[str, str]:
    """'true X' and 'pred Y' on lines of at most TITLE_WIDTH characters; red when they differ."""
    true, guess = int(loaded.labels[index]), int(predicted[index])
    lines = [f"{word} {short_name(loaded.class_names[label])}" for word, label in (("true", true), ("pred", guess))]
    return "\n".join(textwrap.fill(line, TITLE_WIDTH) for line in lines), "black" if true == guess else "red"


def grid_figure(loaded: Loaded, maps: np.ndarray, predicted: torch.Tensor, title: str) -> plt.Figure:
    """Every sample with its map: one column per class, the class's samples downwards."""
    classes = sorted(set(loaded.labels.tolist()))
    rank = {label: 0 for label in classes}
    places = []
    for label in loaded.labels.tolist():
        places.append((rank[label], classes.index(label)))
        rank[label] += 1
    rows, columns = max(rank.values()), len(classes)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns + 1.2, 2.0 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    images = pictures(loaded)
    for index, (row, column) in enumerate(places):
        ax = axes[row, column]
        ax.imshow(overlay(images[index], maps[index]))
        text, color = sample_title(loaded, index, predicted)
        ax.set_title(text, fontsize=8, color=color)
    figure.suptitle(title)
    _cam_colorbar(figure, axes)
    return figure


def steps_figure(loaded: Loaded, per_step: np.ndarray, predicted: torch.Tensor) -> plt.Figure:
    """A few samples (rows) over time (columns): what the model saw at each step, with that step's map."""
    samples, columns, seen = sequence_samples(loaded), step_columns(per_step.shape[1]), step_pictures(loaded)
    figure, axes = plt.subplots(len(samples), len(columns), figsize=(1.2 * len(columns) + 1.5, 1.35 * len(samples) + 0.8), squeeze=False)
    for row, index in enumerate(samples):
        for column, step in enumerate(columns):
            ax = axes[row, column]
            ax.imshow(overlay(seen[index, step], per_step[index, step]))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t={step + 1}", fontsize=8)
        text, color = sample_title(loaded, index, predicted)
        axes[row, 0].set_ylabel(text, fontsize=8, color=color, rotation=0, ha="right", va="center")
    note = shown_steps_note(per_step.shape[1])
    figure.suptitle(f"Grad-CAM per time step ({loaded.where}; one colour scale per sample{note})")
    _cam_colorbar(figure, axes)
    return figure


def steps_animation(loaded: Loaded, per_step: np.ndarray, predicted: torch.Tensor) -> Prerendered:
    """The per-step maps over the input frames, one animation frame per time step."""
    samples, seen, steps = sequence_samples(loaded), step_pictures(loaded), per_step.shape[1]
    # Animation frames are not trimmed like saved figures: a constrained layout keeps the titles inside.
    figure, axes = plt.subplots(1, len(samples), figsize=(2.4 * len(samples) + 1.0, 3.4), squeeze=False, layout="constrained")
    images = []
    for ax, index in zip(axes[0], samples):
        images.append(ax.imshow(overlay(seen[index, 0], per_step[index, 0])))
        text, color = sample_title(loaded, index, predicted)
        ax.set_title(text, fontsize=9, color=color)
        ax.axis("off")
    clock = figure.suptitle("")
    _cam_colorbar(figure, axes)

    def draw(step: int):
        for image, index in zip(images, samples):
            image.set_data(overlay(seen[index, step], per_step[index, step]))
        clock.set_text(f"Grad-CAM per step, {loaded.where}: t = {step + 1} / {steps}")
        return [*images, clock]

    return prerendered(figure, draw, steps)


def gradcam_artifacts(loaded: Loaded, out_dir: Path) -> list[Artifact]:
    """Grad-CAM figures of `loaded`'s samples for their predicted classes, written under `out_dir`."""
    out_dir = Path(out_dir)
    predicted = loaded.output.predictions()  # ties decided by the output membrane, as the accuracy is
    where = loaded.where
    if not loaded.spiking:
        maps = cnn_cam(loaded.model, loaded.inputs, predicted)
        figure = grid_figure(loaded, maps, predicted, f"Grad-CAM of the predicted class, {where} (last conv block)")
        path = save_figure(figure, out_dir / "gradcam_grid.png")
        return [Artifact(path, f"Grad-CAM ({where}): where the CNN looks for the class it predicts; wrong predictions in red.", SECTION)]
    summed, per_step = spiking_cam(loaded.model, loaded.inputs, predicted, loaded.output)
    layer = loaded.model.explained_spikes.spikes
    steps = per_step.shape[1]
    title = f"Grad-CAM of the predicted class, {where} ({layer} spikes, summed over {steps} steps)"
    artifacts = [
        Artifact(
            save_figure(grid_figure(loaded, summed, predicted, title), out_dir / "gradcam_grid.png"),
            f"Grad-CAM ({where}), summed over {steps} time steps: where the {layer} spikes that drive the predicted class "
            "come from; wrong predictions in red.",
            SECTION,
        ),
        Artifact(
            save_figure(steps_figure(loaded, per_step, predicted), out_dir / "gradcam_steps.png"),
            f"Grad-CAM ({where}) step by step over the input the network saw: when the evidence arrives.",
            SECTION,
        ),
    ]
    if loaded.events:
        path = save_animation(steps_animation(loaded, per_step, predicted), out_dir / "gradcam_steps", fps=step_fps(steps))
        artifacts.append(Artifact(path, f"Grad-CAM ({where}) per time step over the event frames, one frame per step.", SECTION))
    return artifacts


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, "analysis.gradcam", __doc__.splitlines()[0], "gradcam", gradcam_artifacts)


if __name__ == "__main__":
    sys.exit(main())
