"""The experiment-level analysis and the report.

Fast: the summary's sentences, the Pareto front, hyperparameter inference and importance, the
Markdown/HTML rendering and bad inputs, on small hand-made data. Slow: whole reports on smoke studies,
their figures, the page in a real headless browser, and the notebooks under a real Jupyter kernel.
"""

from __future__ import annotations

import contextlib
import csv
import html as html_text
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from PIL import Image, ImageSequence

from analysis.artifacts import Artifact
from analysis.comparison import StudyRow
from analysis.content import Document, Note, Table
from analysis.experiment import ArchitectureResult, Trial
from analysis.exports import export_refusal
from analysis.hyperparameters import Importance, infer_distribution, parameter_importance, searched_values
from analysis.page import html
from analysis.tradeoff import pareto_front
from study.invocation import RecordedSettings
from analysis.writeup import compared_pairs, comparison_sentence, importance_sentence, markdown, study_sentence, summary_sentences
from study.checkpoint import save_checkpoint
from study.config import Hyperparams
from study.registry import build_model
from study.statistics import MCNEMAR, mean_interval, paired_difference
from study.summary import Architecture, BestModel, Comparison, Summary, TrialRecord, TrialStatus

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "analysis" / "notebooks").glob("*.ipynb"))
EXPERIMENTS = ("mnist-cnn-synthetic", "nmnist-scnn-synthetic")
BLANK_VARIANCE = 10.0  # grey-level variance (0-255) below which an image counts as blank: a plain canvas has 0


# ---------------------------------------------------------------- hand-made data


def study_row(**changes) -> StudyRow:
    values = dict(
        name="nmnist-cnn", dataset="nmnist", arch="cnn", spiking=False, synthetic=False,
        best_val_acc=0.9, best_val_loss=0.3, test_acc=0.9, test_loss=0.3, test_samples=100,
        parameters=1000, model_bytes=4000, time_steps=None, seconds_per_epoch=1.0, search_epochs=30, trials=10,
        effective_macs=1e6, effective_acs=0.0, dense_ops=1.7e6, membrane_updates=0.0, activation_sparsity=0.5, operation_samples=20,
        energy_pj=4.6e6, energy_table_name="32-bit float, 45 nm",
    )
    return StudyRow(**{**values, **changes})


def spiking_row(**changes) -> StudyRow:
    values = dict(
        name="nmnist-scnn", arch="scnn", spiking=True, time_steps=25, effective_macs=0.0, effective_acs=2.5e5, membrane_updates=5e4,
        activation_sparsity=0.97, energy_pj=2.5e5 * 0.9 + 5e4 * 4.6,  # 455 nJ
    )
    return study_row(**{**values, **changes})


def hand_trial(trial_id: str, config: dict, accuracies: list[float], status: str = "completed") -> Trial:
    history = pd.DataFrame({"epoch": range(1, len(accuracies) + 1), "val_acc": accuracies, "val_loss": [1.0] * len(accuracies)})
    return Trial(trial_id, config, status, len(accuracies), {}, history, None)


def hand_best(trial_id: str = "a", checkpoint: str = "best.pth") -> BestModel:
    return BestModel(trial_id, {}, 1, 0.5, 1.0, checkpoint, f"trial_{trial_id}/checkpoint_000000", 0.5, 1.0, 10)


def hand_summary(dataset: str, arch: str, trials: list[TrialRecord], best: BestModel | None, max_epochs: int = 1) -> Summary:
    architecture = Architecture(arch, arch != "cnn", "", best, tuple(trials))
    return Summary(dataset, False, "val_acc", "max", max_epochs, "hand", (architecture,))


def hand_experiment(trials: list[Trial]) -> ArchitectureResult:
    summary = hand_summary("nmnist", "scnn", [], hand_best(trials[0].trial_id), max_epochs=3)
    return ArchitectureResult("hand", Path("hand"), RecordedSettings(data_dir=Path("data")), summary, summary.architectures[0], tuple(trials), Path("best.pth"))


def test_a_comparison_folder_gets_one_report_named_after_it_and_separate_folders_are_joined(tmp_path):
    from analysis.report import report_folder

    def architecture_of(folder: str, arch: str) -> ArchitectureResult:
        summary = hand_summary("nmnist", arch, [], hand_best())
        return ArchitectureResult(f"{folder}-{arch}", tmp_path / "results" / folder, RecordedSettings(), summary, summary.architectures[0], (), Path("best.pth"))

    comparison = [architecture_of("nmnist-cnn-scnn", "cnn"), architecture_of("nmnist-cnn-scnn", "scnn")]
    assert report_folder(comparison, None, tmp_path / "reports") == tmp_path / "reports" / "nmnist-cnn-scnn"
    separate = [architecture_of("mnist-cnn", "cnn"), architecture_of("nmnist-scnn", "scnn")]
    assert report_folder(separate, None, tmp_path / "reports") == tmp_path / "reports" / "mnist-cnn+nmnist-scnn"
    assert report_folder(separate, "mine", tmp_path / "reports") == tmp_path / "reports" / "mine"


# ---------------------------------------------------------------- Pareto front


def test_pareto_front_keeps_exactly_the_points_no_other_point_beats():
    ops = [10, 20, 20, 5, 40]
    accuracy = [0.5, 0.7, 0.6, 0.5, 0.7]
    # (10, .5) loses to (5, .5): fewer ops, same accuracy; (20, .6) and (40, .7) lose to (20, .7).
    assert pareto_front(ops, accuracy) == [False, True, False, True, False]


def test_pareto_front_keeps_identical_points_together():
    assert pareto_front([3.0, 3.0, 9.0], [0.4, 0.4, 0.2]) == [True, True, False]


# ---------------------------------------------------------------- the summary's sentences


def test_comparison_sentence_names_the_winner_the_gap_its_test_and_the_energy_ratio():
    sentence = comparison_sentence(spiking_row(test_acc=0.775), study_row(test_acc=0.9))
    assert sentence == (
        "On nmnist, the conventional cnn was more accurate than the spiking scnn by 12.5 percentage points (90.0% against "
        "77.5%, single runs; Fisher's exact test on 100 test samples each: p = 0.033); the cnn at 10.1 times the estimated "
        "energy per inference (4.6 uJ against 455 nJ: 1M MACs against 250k ACs + 50k membrane updates; arithmetic only, "
        "32-bit float, 45 nm; memory access and data movement, not included, can dominate)."
    )


def test_comparison_sentence_follows_the_numbers_when_the_spiking_network_wins():
    sentence = comparison_sentence(spiking_row(test_acc=0.95, test_samples=1000), study_row(test_acc=0.9, test_samples=1000))
    assert sentence.startswith("On nmnist, the spiking scnn was more accurate than the conventional cnn by 5.0 percentage points")
    assert "the scnn at 10.1 times less estimated energy per inference (455 nJ against 4.6 uJ" in sentence


def test_a_gap_that_could_be_chance_is_called_indistinguishable():
    sentence = comparison_sentence(spiking_row(test_acc=0.87), study_row(test_acc=0.9))  # 3 points on 100 samples
    assert sentence.startswith("On nmnist, the conventional cnn and the spiking scnn are indistinguishable at this sample size: 3.0 percentage points apart")
    assert "Fisher's exact test on 100 test samples each: p = 0.66" in sentence  # scipy.stats.fisher_exact([[90, 10], [87, 13]])


def test_paired_repeats_give_the_interval_of_the_difference_and_mcnemars_test():
    repeats = mean_interval([0.95, 0.96, 0.94])
    first, second = spiking_row(repeat_acc=repeats, repeats=3), study_row(repeat_acc=mean_interval([0.90, 0.91, 0.89]), repeats=3)
    comparison = Comparison("scnn", "cnn", paired_difference([0.95, 0.96, 0.94], [0.90, 0.91, 0.89]), MCNEMAR, (30, 2), 1e-6, True)
    sentence = comparison_sentence(first, second, comparison)
    assert sentence.startswith("On nmnist, the spiking scnn was more accurate than the conventional cnn by 5.0 percentage points (95.0% against 90.0%, over 3 repeats")
    assert "exact McNemar test" in sentence and "p = 1e-06" in sentence
    flipped = Comparison("cnn", "scnn", paired_difference([0.90, 0.91, 0.89], [0.95, 0.96, 0.94]), MCNEMAR, (2, 30), 1e-6, True)
    assert comparison_sentence(first, second, flipped) == sentence  # the interval is the winner's minus the loser's either way


def test_comparison_across_data_sets_says_so():
    sentence = comparison_sentence(spiking_row(), study_row(dataset="mnist", test_acc=0.99))
    assert sentence.startswith("The conventional cnn on mnist reached 99.0% test accuracy and the spiking scnn on nmnist 90.0%")
    assert "the data sets differ, so the gap mixes task and network" in sentence


def test_summary_warns_about_synthetic_data_only_when_there_is_some():
    real = summary_sentences([study_row(), spiking_row()], {})
    synthetic = summary_sentences([study_row(synthetic=True), spiking_row(synthetic=True)], {})
    assert not any("ynthetic" in sentence for sentence in real)
    assert synthetic[0].startswith("**Synthetic data.** All studies ran on generated data")


def test_summary_covers_each_study_each_pair_the_caveats_and_the_sparsity():
    sentences = summary_sentences([study_row(saw="each image once"), spiking_row(test_acc=0.8)], {})
    assert sentences[0].startswith("The conventional cnn on nmnist, which saw each image once, reached 90.0% test accuracy on 100 samples (95% CI 82.4%-95.1%")
    assert "The spiking scnn on nmnist reached 80.0% test accuracy" in sentences[1]
    assert sentences[2].startswith("On nmnist, the conventional cnn and the spiking scnn are indistinguishable at this sample size: 10.0 percentage points apart")
    assert sentences[3].startswith("N-MNIST is largely solvable from its events summed over time")
    assert sentences[4] == "Activation sparsity (share of zero activations over the test samples): conventional cnn on nmnist 50.0%, spiking scnn on nmnist 97.0%."
    assert len(sentences) == 5


def test_a_model_without_output_spikes_is_flagged():
    assert "emitted no output spike on the test split" in study_sentence(spiking_row(output_silent=True))


def test_studies_of_one_kind_on_the_same_data_are_compared_too():
    cnn = study_row(name="mnist-cnn", dataset="mnist")
    scnn = spiking_row(name="dvsgesture-scnn", dataset="dvsgesture", test_acc=0.85, test_samples=1000)
    slstm = spiking_row(name="dvsgesture-slstm", dataset="dvsgesture", arch="slstm", test_acc=0.75, test_samples=1000)
    nmnist = spiking_row(name="nmnist-scnn", dataset="nmnist")
    pairs = [(a.name, b.name) for a, b in compared_pairs([cnn, scnn, slstm, nmnist])]
    assert pairs == [
        ("dvsgesture-scnn", "mnist-cnn"), ("dvsgesture-slstm", "mnist-cnn"), ("nmnist-scnn", "mnist-cnn"),
        ("dvsgesture-scnn", "dvsgesture-slstm"),  # same kind, same data; nmnist-scnn shares neither data set
    ]
    sentence = comparison_sentence(scnn, slstm)
    assert sentence.startswith("On dvsgesture, the spiking scnn was more accurate than the spiking slstm by 10.0 percentage points")


def test_importance_sentence_names_the_leader_or_the_tie():
    single = importance_sentence("scnn on nmnist", Importance({"lr": 0.6, "beta": 0.3, "num_steps": 0.1}, trials=12))
    assert single == (
        "In the search of the scnn on nmnist, lr mattered most for validation accuracy "
        "(60% of the total importance, PED-ANOVA over 12 trials)."
    )
    tied = importance_sentence("scnn on nmnist", Importance({"lr": 0.4, "beta": 0.4, "slope": 0.2}, trials=2))
    assert "lr and beta tied as the most important" in tied and "40% of the total importance each" in tied
    assert tied.endswith("over 2 trials) (few trials: treat as indicative only).")


# ---------------------------------------------------------------- hyperparameters


def test_searched_values_keep_only_parameters_that_varied():
    trials = [
        hand_trial("a", {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}, [0.5]),
        hand_trial("b", {"optimizer": "sgd", "lr": 1e-2, "batch_size": 64, "momentum": 0.9}, [0.4]),
    ]
    assert searched_values(trials) == {"lr": [1e-3, 1e-2], "optimizer": ["adam", "sgd"]}


def test_distributions_are_inferred_from_the_values():
    assert infer_distribution([True, False, None], log=False) == CategoricalDistribution([False, True])
    assert infer_distribution([10, 25, 15], log=False) == IntDistribution(10, 25)
    assert infer_distribution([3e-4, 2e-2], log=True) == FloatDistribution(3e-4, 2e-2, log=True)


def test_importance_finds_the_parameter_that_decides_the_score():
    rng = np.random.default_rng(0)
    trials = []
    for index, lr in enumerate(np.geomspace(3e-4, 3e-2, 16)):
        config = {"lr": float(lr), "beta": float(rng.uniform(0.5, 0.99)), "optimizer": "adam"}
        trials.append(hand_trial(f"t{index}", config, [1.0 - float(lr) * 20]))  # small lr: high accuracy
    importance = parameter_importance(hand_experiment(trials))
    assert isinstance(importance, Importance) and importance.trials == 16
    assert list(importance.values) == ["lr", "beta"] and importance.values["lr"] > 0.5
    assert sum(importance.values.values()) == pytest.approx(1.0)


def test_importance_says_why_it_cannot_be_computed():
    one = parameter_importance(hand_experiment([hand_trial("a", {"lr": 1e-3}, [0.5]), hand_trial("b", {"lr": 1e-2}, [])]))
    assert one == "parameter importance needs at least 2 trials with a validation score; this study has 1"
    same = parameter_importance(hand_experiment([hand_trial("a", {"lr": 1e-3}, [0.5]), hand_trial("b", {"lr": 1e-3}, [0.4])]))
    assert same == "no hyperparameter took two different values in this study's trials"


def assert_not_blank(path: Path) -> None:
    with Image.open(path) as image:
        for number, frame in enumerate(ImageSequence.Iterator(image)):
            variance = float(np.asarray(frame.convert("L"), dtype=float).var())
            assert variance > BLANK_VARIANCE, f"{path} frame {number} is blank (variance {variance:.2f})"


def test_study_figures_of_a_hand_made_study(tmp_path):
    from analysis.study_figures import hyperparameter_effects, importance_chart, learning_curves, parallel_coordinates

    statuses = ["completed", "stopped early", "diverged"]
    trials = [
        hand_trial(f"t{i}", {"lr": 10 ** (-4 + i / 4), "beta": 0.5 + i / 40, "optimizer": ["adam", "sgd"][i % 2]},
                   [0.2 + i / 30, 0.3 + i / 25][: 1 + i % 2], statuses[i % 3])
        for i in range(12)
    ]
    experiment = hand_experiment(trials)
    importance = parameter_importance(experiment)
    artifacts = [
        learning_curves([experiment], tmp_path),
        hyperparameter_effects(experiment, tmp_path),
        importance_chart(experiment, importance, tmp_path),
        parallel_coordinates(experiment, tmp_path),
    ]
    assert "ASHA stopped 4 trials early" in artifacts[0].caption
    assert "against the 3 hyperparameters the search varied" in artifacts[1].caption
    for artifact in artifacts:
        assert artifact.section == "Study"
        assert_not_blank(artifact.path)
    constant = hand_experiment([hand_trial("a", {"lr": 1e-3}, [0.5]), hand_trial("b", {"lr": 1e-3}, [0.4])])
    assert hyperparameter_effects(constant, tmp_path) is None and parallel_coordinates(constant, tmp_path) is None


def test_every_trial_status_has_a_colour_of_its_own_in_the_study_figures():
    from analysis.study_figures import STATUS_COLOURS

    assert set(STATUS_COLOURS) == set(TrialStatus)
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)  # the legend tells every status apart


def test_the_learning_curves_caption_names_trials_that_stopped_themselves(tmp_path):
    from analysis.study_figures import learning_curves

    statuses = ["completed", "silent", "stalled", "stalled"]
    experiment = hand_experiment([hand_trial(f"t{i}", {"lr": 1e-3}, [0.1 * (i + 1)], status) for i, status in enumerate(statuses)])
    caption = learning_curves([experiment], tmp_path).caption
    assert "3 trials stopped themselves: 1 silent (purple), 2 stalled (olive)" in caption


# ---------------------------------------------------------------- rendering


def test_markdown_and_html_show_the_same_items_in_section_order(tmp_path):
    figure = tmp_path / "study" / "curves & more.png"
    figure.parent.mkdir()
    Image.new("RGB", (4, 4)).save(figure)
    document = Document(
        title="A <report>",
        summary=["**Synthetic data.** Beware.", "One sentence."],
        items=[
            Artifact(figure, "Curves <per> epoch.", "Study"),
            Table("The numbers.", "Comparison", ["study", "acc"], [["a|b", "90.0%"]]),
            Note("Study", "No importance chart, because nothing varied."),
        ],
    )
    text = markdown(document, tmp_path)
    assert text.index("## Study") < text.index("## Comparison")
    assert "![Curves <per> epoch.](study/curves%20%26%20more.png)" in text
    assert "| a\\|b | 90.0% |" in text and "> No importance chart, because nothing varied." in text
    page = html(document, tmp_path)
    assert '<img src="study/curves%20%26%20more.png" alt="Curves &lt;per&gt; epoch.">' in page
    assert "<li><strong>Synthetic data.</strong> Beware.</li>" in page and "<td>a|b</td>" in page
    assert page.index('id="study"') < page.index('id="comparison"')
    linked = re.findall(r'<img src="([^"]+)"', page)
    assert linked and all((tmp_path / unquote(src)).is_file() for src in linked)  # the page's links reach the files


# ---------------------------------------------------------------- bad input


def write_experiment(folder: Path, summary: Summary | None) -> Path:
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({"settings": {"data_dir": str(folder / "data")}}))
    if summary is not None:
        (folder / "summary.json").write_text(summary.to_json())
    return folder


def run_report(argv: list[str], capsys) -> tuple[int, str]:
    from analysis.report import main

    status = main(argv)
    return status, " ".join(capsys.readouterr().err.split())


def test_a_folder_that_is_not_an_experiment_is_refused(tmp_path, capsys):
    status, message = run_report([str(tmp_path), "--out-dir", str(tmp_path / "reports")], capsys)
    assert status == 2
    assert f"{tmp_path} is not an experiment folder: it has no study.json" in message


def test_an_unknown_name_lists_the_experiments_under_results(tmp_path, capsys, monkeypatch):
    write_experiment(tmp_path / "results" / "mnist-cnn", None)
    monkeypatch.chdir(tmp_path)
    status, message = run_report(["nmnist-scnn"], capsys)
    assert status == 2
    assert "No experiment 'nmnist-scnn': it is neither a folder nor a name under" in message
    assert "Experiments there: mnist-cnn." in message


def test_an_experiment_that_never_finished_is_refused(tmp_path, capsys):
    folder = write_experiment(tmp_path / "running", None)
    status, message = run_report([str(folder)], capsys)
    assert status == 2 and "has no finished trial to analyse: there is no summary.json" in message


def test_an_experiment_whose_trials_finished_no_epoch_is_refused(tmp_path, capsys):
    trial = TrialRecord("a", {}, TrialStatus.ERROR, 0, {}, "boom", "trial_a")
    folder = write_experiment(tmp_path / "failed", hand_summary("mnist", "cnn", [trial], None, max_epochs=2))
    status, message = run_report([str(folder)], capsys)
    assert status == 2 and "has no finished trial: none of its 1 trial finished an epoch" in message


def finished_experiment(folder: Path, studied: tuple[str, str], saved: tuple[str, str]) -> Path:
    """An experiment that studied `studied` (dataset, arch) and whose best.pth holds an untrained `saved` model."""
    checkpoint = folder.parent / f"{folder.name}-best.pth"
    dataset, arch = saved
    save_checkpoint(checkpoint, build_model(dataset, arch, Hyperparams()), dataset=dataset, arch=arch, hp=Hyperparams())
    trial = TrialRecord("a", {}, TrialStatus.COMPLETED, 1, {}, None, "trial_a")
    return write_experiment(folder, hand_summary(*studied, [trial], hand_best("a", str(checkpoint))))


def test_a_best_checkpoint_of_another_architecture_is_refused(tmp_path, capsys):
    folder = finished_experiment(tmp_path / "mixed", studied=("nmnist", "scnn"), saved=("mnist", "cnn"))
    status, message = run_report([str(folder)], capsys)
    assert status == 2
    assert f"{tmp_path / 'mixed-best.pth'} holds a cnn for mnist, but the experiment mixed studied a scnn for nmnist" in message


def test_a_label_that_cannot_name_a_folder_is_refused(tmp_path, capsys):
    folder = finished_experiment(tmp_path / "fine", studied=("mnist", "cnn"), saved=("mnist", "cnn"))
    status, message = run_report([str(folder), "--label", "../elsewhere", "--out-dir", str(tmp_path / "reports")], capsys)
    assert status == 2 and "--label '../elsewhere': use letters, digits" in message
    status, message = run_report([str(folder), str(folder), "--out-dir", str(tmp_path / "reports")], capsys)
    assert status == 2 and "Two experiments share a name (fine, fine)" in message
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- the browser check


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must run the browser test (Debian package `chromium`)")
    pytest.skip("chromium is not installed (Debian package `chromium`)")


# Records, once the page and its media have loaded, whether each image decoded and each video read its metadata.
MEDIA_PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const images = Array.from(document.images, (img) => [img.getAttribute("src"), img.complete && img.naturalWidth > 0]);
  const videos = Array.from(document.querySelectorAll("video"), (v) => [v.getAttribute("src"), v.readyState >= 1]);
  const out = document.createElement("pre");
  out.id = "media-check";
  out.textContent = JSON.stringify(images.concat(videos));
  document.body.append(out);
}, 2000));
</script>"""


def media_states(page: Path, profile: Path) -> dict[str, bool]:
    """src -> loaded, for every <img> and <video> of `page` as headless chromium renders it."""
    probe = page.with_name(f"_probe_{page.name}")  # beside the page, so its relative links still resolve
    probe.write_text(page.read_text().replace("</body>", MEDIA_PROBE + "</body>"))
    try:
        browser = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--allow-file-access-from-files", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=180,
        )
    finally:
        probe.unlink()
    assert browser.returncode == 0, f"chromium exited with {browser.returncode}: {browser.stderr[-2000:]}"
    dom = browser.stdout
    found = re.search(r'<pre id="media-check">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; chromium printed: {dom[-2000:]}"
    return dict(json.loads(html_text.unescape(found.group(1))))


def test_the_browser_check_notices_a_broken_image(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "good.png")
    page = tmp_path / "page.html"
    page.write_text('<html><body><img src="good.png"><img src="missing.png"></body></html>')
    assert media_states(page, tmp_path / "profile") == {"good.png": True, "missing.png": False}


# ---------------------------------------------------------------- whole reports on smoke studies


@pytest.fixture(scope="module")
def report_run(smoke_experiments, tmp_path_factory):
    """`python -m analysis.report` on the two smoke experiments: (report folder, printed output)."""
    from analysis.report import main

    out_dir = tmp_path_factory.mktemp("reports")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([*(str(smoke_experiments / name) for name in EXPERIMENTS), "--out-dir", str(out_dir), "--samples", "10"])
    assert status == 0
    return out_dir / "+".join(EXPERIMENTS), printed.getvalue()


def linked_files(text: str, pattern: str, folder: Path) -> set[Path]:
    return {folder / unquote(link) for link in re.findall(pattern, text)}


@pytest.mark.slow
def test_report_writes_page_and_markdown_with_the_same_existing_figures(report_run, smoke_experiments):
    folder, printed = report_run
    assert printed.strip() == str(folder / "index.html")
    markdown_text, page = (folder / "report.md").read_text(), (folder / "index.html").read_text()
    in_markdown = linked_files(markdown_text, r'!\[[^\]]*\]\(([^)]+)\)', folder) | linked_files(markdown_text, r'<video src="([^"]+)"', folder)
    in_page = linked_files(page, r'<(?:img|video) src="([^"]+)"', folder)
    assert in_markdown == in_page and len(in_page) >= 8
    assert all(path.is_file() for path in in_page) and (folder / "comparison" / "comparison.csv").is_file()
    for section in ("Study", "Comparison", "Grad-CAM", "Spikes", "Weights"):
        assert f"\n## {section}\n" in markdown_text and f">{section}</h2>" in page
    assert markdown_text.splitlines()[2].startswith("- **Synthetic data.** All studies ran on generated data")
    summary = markdown_text.split("\n## ")[0].splitlines()
    assert any("cnn on mnist" in line and "scnn on nmnist" in line and "test accuracy" in line for line in summary)
    for name in EXPERIMENTS:
        assert f"| {name} |" in markdown_text and f"<td>{name}</td>" in page
    # the smoke studies' best models were not exported: the export table gives the command for each that
    # can be exported, and the exporter's own reason for each that cannot (a max-pooled spiking CNN)
    refused = sum(export_refusal(path) is not None for path in (smoke_experiments.parent / "checkpoints").glob("*/*/best.pth"))
    for text in (markdown_text, page):
        assert text.count("python -m study.export ") == len(EXPERIMENTS) - refused and text.count("cannot be exported") == refused


@pytest.mark.slow
def test_every_figure_of_the_report_is_not_blank(report_run):
    folder, _ = report_run
    figures = sorted(folder.rglob("*.png")) + sorted(folder.rglob("*.gif"))
    assert len(figures) >= 8
    for path in figures:
        assert_not_blank(path)


@pytest.mark.slow
def test_one_count_per_checkpoint_feeds_the_table_the_pareto_plot_and_a_second_report(report_run, smoke_experiments, monkeypatch):
    import analysis.operations
    from analysis.experiment import load_experiment
    from analysis.operations import checkpoint_operations
    from analysis.tradeoff import trial_points
    from study.energy import HOROWITZ_FLOAT32

    folder, _ = report_run
    experiment = load_experiment(smoke_experiments / "nmnist-scnn-synthetic")
    cache_dir = folder.parent / ".cache"

    def no_loading(*args, **kwargs):
        raise AssertionError("a counted checkpoint was loaded again")

    monkeypatch.setattr(analysis.operations, "load_with_samples", no_loading)  # every count below comes from the cache
    points = trial_points(experiment, 10, experiment.data_dir, cache_dir, HOROWITZ_FLOAT32)
    counts = [checkpoint_operations(trial.checkpoint, 10, experiment.data_dir, cache_dir) for trial in experiment.trials]
    assert len(points) == len(experiment.trials) > 0
    assert [point.energy_pj for point in points] == [HOROWITZ_FLOAT32.energy_pj(count) for count in counts]
    best = checkpoint_operations(experiment.best_checkpoint, 10, experiment.data_dir, cache_dir)
    with open(folder / "comparison" / "comparison.csv", newline="") as file:
        row = next(r for r in csv.DictReader(file) if r["name"] == experiment.name)
    assert float(row["effective_acs"]) == best.effective_acs > 0 and float(row["energy_pj"]) == HOROWITZ_FLOAT32.energy_pj(best)
    assert int(row["operation_samples"]) == best.samples == 10
    text = " ".join((folder / "report.md").read_text().split())
    assert "Memory access and data movement are not included" in text and "8-bit integer, 45 nm" in text
    assert f"| {experiment.name} | {best.layers[0].name} | MACs |" in text  # the first layer sees event counts


@pytest.mark.slow
def test_an_energy_aware_search_records_both_objectives_and_the_report_draws_its_front(report_run, smoke_experiments):
    import optuna

    from study.searcher import journal_storage

    folder, _ = report_run
    study = optuna.load_study(study_name="scnn", storage=journal_storage(str(smoke_experiments / "nmnist-scnn-synthetic")))
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(study.directions) == 2 and complete and all(len(trial.values) == 2 and trial.values[1] > 0 for trial in complete)
    summary = json.loads((smoke_experiments / "nmnist-scnn-synthetic" / "summary.json").read_text())
    completed = [trial for trial in summary["architectures"][0]["trials"] if trial["status"] == "completed"]
    assert completed and all(trial["last"]["energy_pj"] > 0 for trial in completed)  # the summary keeps the estimate
    assert (folder / "comparison" / "searched_front.png").is_file()
    assert "searched_front.png" in (folder / "report.md").read_text()


@pytest.mark.slow
def test_report_page_loads_in_headless_chromium_with_every_image(report_run, tmp_path):
    folder, _ = report_run
    states = media_states(folder / "index.html", tmp_path / "profile")
    page = (folder / "index.html").read_text()
    assert len(states) == len(re.findall(r"<(?:img|video) ", page)) >= 8
    assert [src for src, loaded in states.items() if not loaded] == []


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_on_a_smoke_experiment(notebook, smoke_experiments, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("SNN_STUDY_EXPERIMENT", str(smoke_experiments / "nmnist-scnn-synthetic"))
    monkeypatch.setenv("SNN_STUDY_FIGURES", str(tmp_path / "figures"))
    node = nbformat.read(notebook, as_version=4)
    assert all(not cell.get("outputs") for cell in node.cells), f"{notebook.name} is committed with outputs"
    nbclient.NotebookClient(node, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [output for cell in node.cells for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    assert shown, f"{notebook.name} displayed no figure"


def test_there_are_notebooks_to_run():
    assert {path.stem for path in NOTEBOOKS} >= {"explore_study", "explore_model"}
