"""How a spiking model reaches its decision, on real test samples: `python -m analysis.spikes CHECKPOINT`.

Four views of one forward pass: the input over time, a raster of the hidden layers' spikes, the
output neurons' membrane (against their threshold when they fire), and an animation of the class
scores building up step by step until the decision: spike counts, or the membrane readout so far.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis.animation import Prerendered, prerendered, save_animation, step_fps
from analysis.artifacts import Artifact, save_figure
from analysis.checkpoint_cli import run_cli
from analysis.samples import Loaded, scaled_per_sample, sequence_samples, short_name, shown_steps_note, step_columns
from study.errors import UserError
from study.models import OUTPUT_SPIKES, Output

SECTION = "Spikes"


def class_colours(count: int) -> list:
    """Distinct colours: tab20's ten strong ones first, then its light ones."""
    palette = plt.get_cmap("tab20")
    return [palette(i) for i in [*range(0, 20, 2), *range(1, 20, 2)][:count]]


def focus_sample(loaded: Loaded, output: Output) -> int:
    """The first correctly classified sample (else the first): the one the raster and the traces follow."""
    correct = (output.predictions() == loaded.labels).nonzero()
    return int(correct[0]) if len(correct) else 0


def describe(loaded: Loaded, index: int, output: Output) -> str:
    names, scores = loaded.class_names, output.scores[index]
    silent = " (no output spike)" if loaded.model.output_layer.fires and scores.max() == 0 else ""
    return f"true {short_name(names[int(loaded.labels[index])])}, pred {short_name(names[int(output.predictions()[index])])}{silent}"


def input_pictures(inputs: torch.Tensor, events: bool) -> np.ndarray:
    """The model's input [T, B, C, H, W] as RGB [B, T, H, W, 3]: events red (polarity 1) and blue (polarity 0) on white, else grey."""
    x = scaled_per_sample(inputs.transpose(0, 1), log=events)  # [B, T, C, H, W], one scale per sample
    if x.shape[2] == 2:
        off, on = x[:, :, 0], x[:, :, 1]
        rgb = torch.stack([1 - off, (1 - on - off).clamp_min(0), 1 - on], dim=-1)
    else:
        rgb = x.sum(2, keepdim=True).clamp(0, 1).movedim(2, -1).expand(*x.shape[:2], *x.shape[3:], 3)
    return rgb.numpy()


def input_figure(loaded: Loaded, output: Output) -> plt.Figure:
    """A few samples (rows) over time (columns), as the network received them."""
    samples, columns = sequence_samples(loaded), step_columns(loaded.inputs.shape[0])
    rgb = input_pictures(loaded.inputs, loaded.events)
    figure, axes = plt.subplots(len(samples), len(columns), figsize=(1.1 * len(columns) + 1.6, 1.2 * len(samples) + 0.8), squeeze=False)
    for row, index in enumerate(samples):
        for column, step in enumerate(columns):
            ax = axes[row, column]
            ax.imshow(rgb[index, step])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t={step + 1}", fontsize=8)
        axes[row, 0].set_ylabel(describe(loaded, index, output).replace(", ", "\n"), fontsize=8, rotation=0, ha="right", va="center")
    colours = "red: polarity 1 (ON) events, blue: polarity 0 (OFF)" if loaded.events else "brightness: input value"
    figure.suptitle(f"Input over time ({loaded.where}; {colours}{shown_steps_note(loaded.inputs.shape[0])})")
    return figure


def raster_figure(loaded: Loaded, output: Output, index: int) -> plt.Figure:
    """Spike raster of every hidden layer for one sample: neuron against time step."""
    layers = [name for name in output.spikes if name != OUTPUT_SPIKES]
    steps = loaded.inputs.shape[0]
    figure, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 4.2), squeeze=False)
    for ax, name in zip(axes[0], layers):
        spikes = output.spikes[name][:, index].flatten(1)  # [T, neurons]
        times, neurons = spikes.nonzero(as_tuple=True)
        ax.scatter(times.numpy() + 1, neurons.numpy(), s=4, marker="|", color="black", linewidths=0.6)
        shape = "x".join(str(size) for size in output.spikes[name].shape[2:])
        rate = float(spikes.mean())
        ax.set_title(f"{name} ({shape} neurons)\n{len(times)} spikes, {rate:.3f} per neuron per step", fontsize=9)
        ax.set_xlim(0.5, steps + 0.5)
        ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron (flattened index)")
    figure.suptitle(f"Hidden-layer spikes, {loaded.where}, one test sample ({describe(loaded, index, output)})")
    figure.tight_layout()
    return figure


def membrane_figure(loaded: Loaded, output: Output, index: int) -> plt.Figure:
    """Membrane potential of every output neuron over time for one sample, with the firing threshold."""
    membrane = output.membrane[:, index]  # [T, classes x population]
    fires = loaded.model.output_layer.fires  # membrane readouts integrate without firing
    classes = len(loaded.class_names)
    population = membrane.shape[1] // classes
    colours, true = class_colours(classes), int(loaded.labels[index])
    steps = np.arange(1, membrane.shape[0] + 1)
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for neuron in range(membrane.shape[1]):
        label = neuron // population  # a population's neurons are consecutive (see study.models.common.class_scores)
        ax.plot(steps, membrane[:, neuron], color=colours[label], linewidth=2.2 if label == true else 0.9, alpha=0.9)
        if fires:
            fired = output.spikes[OUTPUT_SPIKES][:, index, neuron].nonzero(as_tuple=True)[0]
            ax.scatter(steps[fired.numpy()], membrane[fired, neuron], color=colours[label], marker="o", s=14, zorder=3)
    handles = [Line2D([], [], color=colours[c], linewidth=2.2 if c == true else 0.9, label=short_name(name)) for c, name in enumerate(loaded.class_names)]
    if fires:
        threshold = float(loaded.model.output_neurons.threshold.detach())  # learned when learn_threshold
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1)
        handles += [Line2D([], [], color="black", linestyle="--", label=f"threshold {threshold:.3g}"), Line2D([], [], color="grey", marker="o", linestyle="", label="spike")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="class (true: thick)", title_fontsize=7)
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane potential")
    per_class = f", {population} neurons per class" if population > 1 else ""
    ax.set_title(f"Output neurons, {loaded.where}{per_class} ({describe(loaded, index, output)})", fontsize=10)
    return figure


# Per readout (study.models.readout): what the class scores are, and the axis label of their running value.
SCORE_WORDS = {
    "spikes": ("Output spike counts", "output spikes so far"),
    "membrane_mean": ("Mean output membrane", "mean membrane so far"),
    "membrane_max": ("Maximum output membrane", "maximum membrane so far"),
}


def standing(scores: np.ndarray, names: list[str], decided: int | None, counts: bool) -> str:
    """Who leads on `scores` so far, or at the last step the model's decision `decided` (a tie is decided by the
    output membrane, see study.models.common.Output.predictions)."""
    leaders = np.flatnonzero(scores == scores.max())
    tie = f" ({len(leaders)}-way tie at {scores.max():.3g})" if len(leaders) > 1 else ""
    if decided is not None:
        return f"decision: {names[decided]}{tie and tie[:-1] + ', broken by the membrane)'}"
    if counts and scores.max() == 0:
        return "no output spikes yet"
    return f"leading: {names[leaders[0]]}{tie}"


def counts_animation(loaded: Loaded, output: Output) -> Prerendered:
    """The class scores as they build up over time (spike counts, or the membrane readout so far), one frame per step."""
    samples, classes = sequence_samples(loaded), len(loaded.class_names)
    layer = loaded.model.output_layer
    title, axis_label = SCORE_WORDS[layer.readout]
    running = layer.running_scores(output)[:, samples].numpy()  # [T, samples, classes]
    decided = output.predictions()[samples].tolist()
    steps = running.shape[0]
    names = [short_name(name) for name in loaded.class_names]
    figure, axes = plt.subplots(1, len(samples), figsize=(3.3 * len(samples), 3.8), squeeze=False, layout="constrained")
    bars, titles = [], []
    for column, (ax, index) in enumerate(zip(axes[0], samples)):
        true = int(loaded.labels[index])
        bars.append(ax.bar(range(classes), running[0, column], color=["tab:green" if c == true else "tab:grey" for c in range(classes)]))
        low, high = min(0.0, running[:, column].min()), max(1.0 if layer.fires else 0.0, running[:, column].max())
        ax.set_ylim(low - 0.1 * (high - low) * (low < 0), high + 0.1 * (high - low))
        ax.set_xticks(range(classes), names, rotation=90 if max(map(len, names)) > 2 else 0, fontsize=7)
        ax.set_ylabel(axis_label)
        if layer.fires:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        titles.append(ax.set_title("", fontsize=9))
    clock = figure.suptitle("")

    def draw(step: int):
        for column, index in enumerate(samples):
            for bar, height in zip(bars[column], running[step, column]):
                bar.set_height(height)
            titles[column].set_text(
                f"true {names[int(loaded.labels[index])]} (green)\n"
                f"{standing(running[step, column], names, decided[column] if step == steps - 1 else None, layer.fires)}"
            )
        clock.set_text(f"{title}, {loaded.where}: t = {step + 1} / {steps}")
        return [*(bar for group in bars for bar in group), *titles, clock]

    return prerendered(figure, draw, steps)


def spike_artifacts(loaded: Loaded, out_dir: Path) -> list[Artifact]:
    """Spike figures and the output-count animation of `loaded`'s samples; [] for a non-spiking model."""
    if not loaded.spiking:
        return []
    out_dir = Path(out_dir)
    output = loaded.output
    index = focus_sample(loaded, output)
    where, steps = loaded.where, loaded.inputs.shape[0]
    artifacts = [
        Artifact(save_figure(input_figure(loaded, output), out_dir / "input_frames.png"), f"Input of the {where} over its {steps} time steps.", SECTION),
        Artifact(
            save_figure(raster_figure(loaded, output, index), out_dir / "hidden_raster.png"),
            f"Hidden-layer spike raster of the {where} for one test sample (the first classified correctly, if any).",
            SECTION,
        ),
        Artifact(
            save_figure(membrane_figure(loaded, output, index), out_dir / "output_membrane.png"),
            f"Membrane potential of the {where}'s output neurons for the same sample"
            + ("; dots are spikes, the dashed line the threshold." if loaded.model.output_layer.fires else " (a membrane readout: they integrate without firing)."),
            SECTION,
        ),
    ]
    path = save_animation(counts_animation(loaded, output), out_dir / "output_counts", fps=step_fps(steps))
    title = SCORE_WORDS[loaded.model.output_layer.readout][0]
    artifacts.append(Artifact(path, f"{title} per class of the {where}, building up step by step until the decision.", SECTION))
    return artifacts


def _spiking_only(loaded: Loaded, out_dir: Path) -> list[Artifact]:
    if not loaded.spiking:
        raise UserError(f"This checkpoint holds a {loaded.arch}, which does not spike: there are no spikes to show.")
    return spike_artifacts(loaded, out_dir)


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, "analysis.spikes", __doc__.splitlines()[0], "spikes", _spiking_only)


if __name__ == "__main__":
    sys.exit(main())
