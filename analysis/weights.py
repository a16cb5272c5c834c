"""Per-layer weight distributions of several models side by side (one column per model)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
from torch import nn

from analysis.artifacts import Artifact, save_figure

SECTION = "Weights"
BINS = 60


def weight_tensors(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The model's weight matrices and kernels (parameters with two or more dimensions), in layer order.

    Biases and the neurons' scalar beta / threshold are left out: a histogram of one value says nothing.
    """
    return [(name, parameter) for name, parameter in model.named_parameters() if parameter.dim() >= 2]


def weights_figure(models: dict[str, nn.Module]) -> plt.Figure:
    """One column per model, one row per weight tensor; empty cells where a model has fewer layers."""
    columns = {label: weight_tensors(model) for label, model in models.items()}
    rows = max(len(tensors) for tensors in columns.values())
    figure, axes = plt.subplots(rows, len(columns), figsize=(4.0 * len(columns), 2.3 * rows + 0.6), squeeze=False)
    for column, (label, tensors) in enumerate(columns.items()):
        for row in range(rows):
            ax = axes[row, column]
            if row >= len(tensors):
                ax.axis("off")
                continue
            name, weight = tensors[row]
            values = weight.detach().flatten().numpy()
            ax.hist(values, bins=BINS, color=f"C{column}")
            shape = "x".join(str(size) for size in weight.shape)
            header = f"{textwrap.fill(label, 45)}\n" if row == 0 else ""  # the column's model, above its first layer
            ax.set_title(f"{header}{name} ({shape})\nmean {values.mean():+.3g}, std {values.std():.3g}", fontsize=8)
            ax.set_ylabel("count", fontsize=8)
            ax.tick_params(labelsize=7)
        if tensors:
            axes[len(tensors) - 1, column].set_xlabel("weight value", fontsize=8)
    figure.suptitle("Weight distributions per layer")
    figure.tight_layout()
    return figure


def weight_artifacts(models: dict[str, nn.Module], out_dir: Path) -> list[Artifact]:
    """A histogram of every weight tensor of each model (label -> model), the models side by side."""
    if not models:
        return []
    path = save_figure(weights_figure(models), Path(out_dir) / "weights.png")
    caption = f"Weight distributions per layer of {', '.join(models)} (one column per model; biases left out)."
    return [Artifact(path, caption, SECTION)]
