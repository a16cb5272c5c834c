"""`python -m study.gpu_check`: everything this project should show on a GPU, in one run, into one JSON file.

Made for a machine that has torch and little else (a cloud GPU image): it needs snntorch, tonic and
importRosbag beside torch (SpikingJelly and loguru for its comparison, if there), and imports neither
Ray nor Optuna. In order, each section written to the JSON as soon as it is done:
1. the training step of the spiking CNN against the tutorial-style reference (`study.speed`), in
   bf16 and fp32, at T=25 and T=100;
2. the CUDA tests (`pytest -m cuda`: fused scan, one-call time folding, bf16 autocast, the epoch loop);
3. SpikingJelly's multi-step network with the same layers and weights on the same batch, if installed,
   with the LIF backend it actually ran in each precision (`inferred_backend`);
4. the whole epoch with loading, as `python -m study.bench` measures it.
`--device cpu` runs the same on the CPU (a dry run: the CUDA tests are then reported as skipped).
Expected to take about 3 minutes on a GPU; `--budget-s` (default 480, the issue's 8 minutes) bounds it:
no section starts after the deadline, a running one finishes (the CUDA tests get what is left as their timeout),
and the sections after it are recorded as `{"skipped_for_time": true, ...}` and listed under
`skipped_for_time`. The goals are a step 10x the reference's and no slower than SpikingJelly's.
Exit status: 0 every section that ran passed and none was skipped for time; 1 a section failed (its
error is in the JSON); 2 bad input, before any GPU time is spent; 3 nothing failed, but the budget ran
out and some sections were skipped. The JSON is written after every section in every case.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import torch

from study import speed
from study.cli import count, print_error
from study.config import Hyperparams
from study.errors import UserError
from study.files import write_atomically
from study.models.common import Output, class_scores
from study.precision import resolve
from study.registry import build_model
from study.writable import check_writable_file

REPO = Path(__file__).resolve().parent.parent
# The files holding the tests marked `cuda`; named, because collecting all of tests/ would import Ray.
CUDA_TEST_FILES = ("tests/test_cuda.py", "tests/test_models.py")
GOALS = {"step_speedup": 10.0, "over_spikingjelly": 1.0}
BUDGET_S = 480.0  # the 8 minutes on a GPU machine
OUT_OF_TIME = 3  # exit status: nothing failed, but sections were skipped for time
PACKAGES = ("torch", "snntorch", "tonic", "numpy", "spikingjelly", "triton", "cupy-cuda12x", "cupy-cuda13x")


def environment(device: torch.device) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(),
        "packages": versions,
        "cuda": torch.version.cuda,
        "device": str(device),
        "dry_run": device.type != "cuda",
        **speed.hardware(device),
    }


def training_steps(device: torch.device, steps: list[int], repeats: int) -> dict:
    """Section 1: ours (bf16 autocast, then fp32) against the reference (fp32, as the tutorial) for every T."""
    peak = speed.matmul_flops(device)
    figures = {"matmul_gflops": peak / 1e9, "batch": speed.BATCH}
    for num_steps in steps:
        for precision in ("bf16", "fp32"):
            figures[f"T{num_steps}_{precision}"] = speed.step_speed(num_steps, device, precision, repeats, peak)
    return figures


def _junit(path: Path) -> list[dict]:
    tests = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = ("skipped" if child.tag == "skipped" else "failed"), child.get("message", "")
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "seconds": float(case.get("time", 0)), "message": message[:500]})
    return tests


def cuda_tests(timeout: float = 300) -> dict:
    """Section 2: the tests marked `cuda`, in a child process (a crash or a hang stays there)."""
    with tempfile.TemporaryDirectory() as folder:
        junit_xml = Path(folder) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", f"--junitxml={junit_xml}", *CUDA_TEST_FILES]
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        tests = _junit(junit_xml) if junit_xml.exists() else []
    counts = {outcome: sum(t["outcome"] == outcome for t in tests) for outcome in ("passed", "failed", "skipped")}
    return {**counts, "exit_status": finished.returncode, "seconds": time.perf_counter() - started, "tests": tests,
            "output_tail": (finished.stdout + finished.stderr)[-3000:]}


class SpikingJellyTwin(torch.nn.Module):
    """Our spiking CNN's layers and weights in SpikingJelly's multi-step modules: `LIFNode(decay_input=False,
    v_reset=None)` is a leaky neuron with subtractive reset (SpikingJelly subtracts in the same step,
    snnTorch one step later, so spikes differ slightly; the work per step is the same)."""

    def __init__(self, ours, hp: Hyperparams):
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        def lif():
            return neuron.LIFNode(tau=1 / (1 - hp.beta), decay_input=False, v_threshold=hp.threshold, v_reset=None,
                                  detach_reset=True, surrogate_function=surrogate.Sigmoid(), step_mode="m")

        layers = []
        for block in ours.blocks:  # SeqToANNContainer folds [T, B, ...] into [T*B, ...], as we do
            layers += [layer.SeqToANNContainer(copy.deepcopy(block.conv), copy.deepcopy(block.pool)), lif()]
        layers += [layer.SeqToANNContainer(copy.deepcopy(ours.classifier)), lif()]
        self.net = torch.nn.Sequential(*layers).to(memory_format=torch.contiguous_format)
        self.reset = functional.reset_net
        self.input_scale, self.num_classes = float(ours.input_scale), ours.output_layer.num_classes

    def run(self, frames: torch.Tensor) -> Output:
        self.reset(self.net)
        return Output(class_scores(self.net(frames * self.input_scale), self.num_classes))  # spikes [T, B, classes]


def bound_implementation(device: torch.device) -> str | None:
    """The LIF implementation SpikingJelly binds on `device`: `functional.neuron_implementation("lif", device)`
    (SpikingJelly 2.0.0: "cuda", "triton" or "torch" on a GPU, "torch-reference" on the CPU); None where this
    SpikingJelly has no such query or it fails (read defensively: the API is young)."""
    try:
        from spikingjelly.activation_based.functional import neuron_implementation

        return str(neuron_implementation("lif", device)["implementation"])
    except Exception:  # an older or newer SpikingJelly: say unknown rather than stop the check
        return None


def inferred_backend(nodes: list[torch.nn.Module], bound: str | None) -> dict:
    """What SpikingJelly ran for its LIF neurons, inferred from them after a run (not what it was asked for).

    SpikingJelly 2.0.0 dropped LIFNode's `backend=` argument and attribute: its `lif_multi_step` runs the bound
    implementation only for float32 membrane state (the state takes the input's dtype, so under bf16 autocast
    it is bf16) and a built-in surrogate, and its Torch reference otherwise. So: the bound implementation, unless
    the neurons' state `v` is not float32, then "torch-reference". Older SpikingJelly (0.0.0.0.x) keeps a
    `backend` attribute on each node ("torch" or "cupy"), read with getattr where there is one. Checked against
    SpikingJelly 2.0.0's source (activation_based/functional/neuron.py: neuron_implementation, lif_multi_step)
    and run on the CPU; on a GPU not yet."""
    legacy = sorted({str(backend) for node in nodes if (backend := getattr(node, "backend", None)) is not None})
    states = sorted({str(v.dtype).removeprefix("torch.") for node in nodes if isinstance(v := getattr(node, "v", None), torch.Tensor)})
    if legacy:
        ran, why = ", ".join(legacy), "the nodes' backend attribute"
    elif bound is None:
        ran, why = "unknown", "this SpikingJelly reports neither neuron_implementation nor a backend attribute"
    elif states and states != ["float32"] and bound != "torch-reference":
        ran, why = "torch-reference", f"membrane state in {', '.join(states)}: SpikingJelly 2.0 runs its bound {bound} kernel on float32 state only"
    else:
        ran, why = bound, "functional.neuron_implementation('lif', device), float32 membrane state"
    return {"backend": ran, "from": why, "bound": bound, "state_dtype": states}


def spikingjelly(device: torch.device, steps: list[int], repeats: int) -> dict:
    """Section 3: SpikingJelly's training step against ours on the same batch and weights (bf16 and fp32), with
    the LIF backend SpikingJelly actually ran for each (`inferred_backend`, read after the timed steps)."""
    try:
        import spikingjelly.activation_based  # noqa: F401
    except ImportError as error:
        return {"installed": False, "why": str(error)}
    figures: dict = {"installed": True, "version": importlib.metadata.version("spikingjelly")}
    bound = bound_implementation(device)
    for num_steps in steps:
        hp = Hyperparams(num_steps=num_steps)
        ours = build_model("nmnist", "scnn", hp).to(device)
        twin = SpikingJellyTwin(ours, hp).to(device)
        frames = (torch.rand(num_steps, speed.BATCH, 2, 34, 34, device=device) < 0.05).float()  # [T, B, C, H, W]
        targets = torch.randint(0, 10, (speed.BATCH,), device=device)
        for precision in ("bf16", "fp32"):
            key = f"T{num_steps}_{precision}"
            try:
                ours_s, theirs_s = speed.paired_seconds(
                    speed.training_step(ours, frames, targets, precision, device),
                    speed.training_step(twin, frames, targets, precision, device), repeats, device)
            except Exception as error:  # a backend that fails at one precision must not hide the other
                figures[key] = {"error": f"{type(error).__name__}: {error}"}
                continue
            nodes = [module for module in twin.modules() if type(module).__name__ == "LIFNode"]
            figures[key] = {"ours_samples_per_s": speed.BATCH / ours_s, "spikingjelly_samples_per_s": speed.BATCH / theirs_s,
                            "over_spikingjelly": theirs_s / ours_s, "spikingjelly_backend": inferred_backend(nodes, bound)}
    ran = sorted({value["spikingjelly_backend"]["backend"] for value in figures.values() if isinstance(value, dict) and "spikingjelly_backend" in value})
    figures["backend"] = ", ".join(ran) if ran else "none ran"
    return figures


def epochs(device: torch.device, quick: bool) -> dict:
    """Section 4: `study.speed`'s data path and whole epochs (synthetic N-MNIST-format data), in the precision a study picks."""
    precision = resolve("auto", device)
    consumption = speed.step_speed(25, device, precision, 3, speed.matmul_flops(device))["ours_samples_per_s"]
    samples = (4 * speed.BATCH, speed.BATCH) if quick else (16 * speed.BATCH, 4 * speed.BATCH)
    with speed.bench_data(None, samples) as data:
        measured = speed.measure_data_and_epochs(data, device, precision, consumption)
    return {"precision": precision, **measured}


def goals(record: dict) -> dict:
    """Where the issue's goals stand: at every T, our step in its faster precision against the reference,
    and our best against SpikingJelly's best on the same network."""
    verdicts: dict = {}
    steps = record.get("training_steps", {})
    for num_steps in sorted({int(key[1:].split("_")[0]) for key in steps if key.startswith("T")}):
        speedup = max(steps[key]["speedup"] for key in steps if key.startswith(f"T{num_steps}_"))
        verdicts[f"step_speedup_T{num_steps}"] = {"value": speedup, "goal": GOALS["step_speedup"], "met": speedup >= GOALS["step_speedup"]}
    jelly = record.get("spikingjelly", {})
    for num_steps in sorted({int(key[1:].split("_")[0]) for key in jelly if key.startswith("T")}):
        runs = [value for key, value in jelly.items() if key.startswith(f"T{num_steps}_") and "ours_samples_per_s" in value]
        if runs:
            ratio = max(r["ours_samples_per_s"] for r in runs) / max(r["spikingjelly_samples_per_s"] for r in runs)
            verdicts[f"over_spikingjelly_T{num_steps}"] = {"value": ratio, "goal": GOALS["over_spikingjelly"], "met": ratio >= GOALS["over_spikingjelly"]}
    if record["environment"]["dry_run"]:
        verdicts["note"] = "dry run on the CPU: the goals are for a GPU"
    return verdicts


def checked_arguments(args: argparse.Namespace) -> tuple[torch.device, list[int], set[str]]:
    """(device, time steps, sections skipped), every one checked before any GPU time is spent; a UserError if not."""
    try:
        steps = [int(value) for value in args.steps.split(",")]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        raise UserError(f"--steps {args.steps}: give whole numbers of time steps of at least 1, comma-separated (e.g. 25,100).")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("torch sees no CUDA device here; --device cpu runs the same sections as a dry run.")
    device = speed.checked_device(args.device)
    skipped = set(filter(None, args.skip.split(",")))
    if unknown := skipped - {"tests", "spikingjelly", "epochs"}:
        raise UserError(f"--skip {', '.join(sorted(unknown))}: the sections are tests, spikingjelly and epochs.")
    if not args.budget_s > 0:  # also refuses nan
        raise UserError(f"--budget-s {args.budget_s:g}: give the seconds the whole check may take, more than 0 (default {BUDGET_S:g}).")
    check_writable_file(args.out, "--out")
    return device, steps, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run of the same sections")
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="the JSON file (default ./gpu-check.json)")
    parser.add_argument("--steps", default="25,100", help="time steps T of the training-step figures (default 25,100)")
    parser.add_argument("--repeats", type=count, default=5, help="timed training steps per figure (default 5)")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out: tests, spikingjelly, epochs")
    parser.add_argument("--quick", action="store_true", help="fewer samples in the epoch section")
    parser.add_argument(
        "--budget-s", type=float, default=BUDGET_S,
        help=f"seconds the whole check may take (default {BUDGET_S:g}): a section starts only while time is left, the rest "
        f"are recorded as skipped for time and the exit status is {OUT_OF_TIME} if nothing failed",
    )
    args = parser.parse_args(argv)
    try:
        device, steps, skipped = checked_arguments(args)
    except UserError as error:
        return print_error(error)
    started = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - started)  # noqa: E731
    record: dict = {"environment": environment(device), "budget_s": args.budget_s, "skipped_for_time": [], "sections_seconds": {}}
    sections = {
        "training_steps": lambda: training_steps(device, steps, args.repeats),
        "cuda_tests": lambda: cuda_tests(timeout=max(1.0, min(300.0, left()))),
        "spikingjelly": lambda: spikingjelly(device, steps, args.repeats),
        "epochs": lambda: epochs(device, args.quick),
    }
    names = {"cuda_tests": "tests"}
    for name, run in sections.items():
        if names.get(name, name) in skipped:
            continue
        section_started = time.perf_counter()
        out_of_time = left() <= 0  # the deadline passed: no section starts after it
        if not out_of_time:
            try:
                record[name] = run()
            except Exception as error:  # record it and go on: the other figures are still worth the GPU time
                # the CUDA tests stopped at the deadline are out of time, not failed (at their own 300 s cap: failed)
                out_of_time = isinstance(error, subprocess.TimeoutExpired) and left() <= 0
                record[name] = {"error": traceback.format_exc()[-3000:]}
            record["sections_seconds"][name] = time.perf_counter() - section_started
        if out_of_time:
            record[name] = {"skipped_for_time": True, "budget_s": args.budget_s, "elapsed_s": time.perf_counter() - started}
            record["skipped_for_time"].append(name)
        record["goals"], record["seconds"] = goals(record), time.perf_counter() - started
        write_atomically(args.out, json.dumps(record, indent=2) + "\n")  # after every section: a killed run keeps what it did
        print(f"{name}: skipped for time (budget {args.budget_s:g} s spent)" if name in record["skipped_for_time"]
              else f"{name}: {record['sections_seconds'][name]:.0f} s", flush=True)
    print(json.dumps(record.get("goals", {}), indent=2))
    print(f"Written: {args.out}")
    # pytest's status, not the failure count: a collection error or a crash of the child fails too
    failed = record.get("cuda_tests", {}).get("exit_status", 0) != 0 or any("error" in record.get(name, {}) for name in sections)
    return 1 if failed else OUT_OF_TIME if record["skipped_for_time"] else 0


if __name__ == "__main__":
    sys.exit(main())
