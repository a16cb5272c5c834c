"""The prepared GPU check, run here as its CPU dry run: every section lands in its JSON, and nothing needs Ray or Optuna."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from study import gpu_check

REPO = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter where importing Ray or Optuna fails, as on a GPU image without their wheels.
WITHOUT_RAY = """
import importlib.abc, importlib.util, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "optuna"):
            raise ImportError(f"{name} is not installed on this GPU machine")

sys.meta_path.insert(0, Blocked())
for test_file in ("conftest", *[Path(f).stem for f in CUDA_TEST_FILES]):  # what the check's pytest child imports
    spec = importlib.util.spec_from_file_location(test_file, f"tests/{test_file}.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
from study.gpu_check import main
status = main(sys.argv[1:])
assert not {"ray", "optuna"} & {name.split(".")[0] for name in sys.modules}
sys.exit(status)
"""


def test_dry_run_writes_every_section_without_ray_or_optuna(tmp_path):
    out = tmp_path / "gpu-check.json"
    script = "from pathlib import Path\nfrom study.gpu_check import CUDA_TEST_FILES\n" + WITHOUT_RAY
    finished = subprocess.run(
        [sys.executable, "-c", script, "--device", "cpu", "--steps", "2", "--repeats", "1", "--skip", "epochs", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    record = json.loads(out.read_text())

    assert record["environment"]["dry_run"] is True and record["environment"]["device"] == "cpu"
    assert record["environment"]["torch"] == torch.__version__ and "snntorch" in record["environment"]["packages"]
    steps = record["training_steps"]
    assert set(steps) == {"matmul_gflops", "batch", "T2_bf16", "T2_fp32"}
    assert all(steps[key]["speedup"] > 0 and steps[key]["ours_samples_per_s"] > 0 for key in ("T2_bf16", "T2_fp32"))
    assert record["goals"]["step_speedup_T2"]["value"] == max(steps["T2_bf16"]["speedup"], steps["T2_fp32"]["speedup"])

    tests = record["cuda_tests"]
    names = [test["test"] for test in tests["tests"]]
    assert "tests.test_models::test_training_step_on_cuda_matches_cpu[scnn]" in names
    assert sum(name.startswith("tests.test_cuda::") for name in names) >= 6
    assert tests["failed"] == 0 and tests["exit_status"] == 0
    assert tests["skipped"] == len(names) and all("no CUDA device" in test["message"] for test in tests["tests"])

    assert record["spikingjelly"]["installed"] == (importlib.util.find_spec("spikingjelly") is not None)
    assert "epochs" not in record and set(record["sections_seconds"]) == {"training_steps", "cuda_tests", "spikingjelly"}


def test_asking_for_cuda_without_a_gpu_or_an_unknown_section_stops_with_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    assert "--device cpu" in capsys.readouterr().err
    assert gpu_check.main(["--device", "cpu", "--skip", "bench", "--out", str(out)]) == 2
    assert "tests, spikingjelly and epochs" in capsys.readouterr().err
    assert gpu_check.main(["--device", "cpu", "--steps", "0", "--out", str(out)]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert gpu_check.main(["--device", "tpu", "--out", str(out)]) == 2
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path)]) == 2  # a folder
    assert "is a folder" in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_a_spent_budget_skips_the_later_sections_and_still_writes_valid_json(tmp_path, capsys):
    """The CPU dry run with a budget shorter than its first section (T=2 takes seconds here): that section runs, every
    later one is recorded as skipped for time, the JSON is complete and the exit status is 3, as documented."""
    out = tmp_path / "gpu-check.json"
    status = gpu_check.main(["--device", "cpu", "--steps", "2", "--repeats", "1", "--budget-s", "0.2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == gpu_check.OUT_OF_TIME == 3
    record = json.loads(out.read_text())
    later = ["cuda_tests", "spikingjelly", "epochs"]
    assert record["budget_s"] == 0.2 and record["skipped_for_time"] == later
    assert {"T2_bf16", "T2_fp32"} <= set(record["training_steps"])  # it started within the budget
    for name in later:
        assert record[name]["skipped_for_time"] is True and record[name]["elapsed_s"] >= 0.2
        assert name not in record["sections_seconds"] and f"{name}: skipped for time" in printed
    assert "step_speedup_T2" in record["goals"]  # the figures that ran are still judged


def test_the_default_budget_is_the_issues_eight_minutes_and_a_budget_must_be_positive(tmp_path, capsys):
    assert gpu_check.BUDGET_S == 480
    out = tmp_path / "gpu-check.json"
    for budget in ("0", "-5", "nan"):
        assert gpu_check.main(["--device", "cpu", "--budget-s", budget, "--out", str(out)]) == 2
        assert "--budget-s" in capsys.readouterr().err
    assert not out.exists()


class LIFNode(torch.nn.Module):
    """Stands in for SpikingJelly's LIFNode (not installed here): found by its class name, read by its attributes."""

    def __init__(self, v: torch.Tensor | None = None, backend: str | None = None):
        super().__init__()
        self.v = v
        if backend is not None:
            self.backend = backend


def test_the_spikingjelly_backend_is_inferred_from_the_bound_kernel_and_the_state_dtype():
    bf16, fp32 = torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2)
    # SpikingJelly 2.0 runs its bound kernel on float32 state only: under bf16 autocast the state is bf16
    assert gpu_check.inferred_backend([LIFNode(bf16), LIFNode(bf16)], "triton")["backend"] == "torch-reference"
    fused = gpu_check.inferred_backend([LIFNode(fp32)], "cuda")
    assert fused["backend"] == "cuda" and fused["bound"] == "cuda" and fused["state_dtype"] == ["float32"]
    assert gpu_check.inferred_backend([LIFNode(fp32, backend="cupy")], None)["backend"] == "cupy"  # SpikingJelly 0.0.0.0.x
    unknown = gpu_check.inferred_backend([LIFNode(fp32)], None)
    assert unknown["backend"] == "unknown" and "neither" in unknown["from"]


def test_the_bound_implementation_is_asked_of_spikingjelly_and_unknown_without_it(monkeypatch):
    device = torch.device("cpu")
    if importlib.util.find_spec("spikingjelly") is None:
        assert gpu_check.bound_implementation(device) is None
    functional = types.ModuleType("spikingjelly.activation_based.functional")
    functional.neuron_implementation = lambda neuron, where: {"implementation": f"{neuron}-on-{where.type}", "unavailable": {}}
    for name, module in (("spikingjelly", types.ModuleType("spikingjelly")),
                         ("spikingjelly.activation_based", types.ModuleType("spikingjelly.activation_based")),
                         ("spikingjelly.activation_based.functional", functional)):
        monkeypatch.setitem(sys.modules, name, module)
    assert gpu_check.bound_implementation(device) == "lif-on-cpu"
    del functional.neuron_implementation  # a SpikingJelly without the query
    assert gpu_check.bound_implementation(device) is None


@pytest.mark.parametrize("budget_s, status", [(0.2, gpu_check.OUT_OF_TIME), (60.0, 1)])
def test_cuda_tests_stopped_at_the_deadline_are_out_of_time_but_a_timeout_before_it_is_a_failure(budget_s, status, tmp_path, monkeypatch):
    def slow_tests(timeout):
        time.sleep(0.3)  # past the short budget, well inside the long one
        raise subprocess.TimeoutExpired("pytest -m cuda", timeout)

    monkeypatch.setattr(gpu_check, "training_steps", lambda *args: {})
    monkeypatch.setattr(gpu_check, "cuda_tests", slow_tests)
    out = tmp_path / "gpu-check.json"
    argv = ["--device", "cpu", "--skip", "spikingjelly,epochs", "--budget-s", str(budget_s), "--out", str(out)]
    assert gpu_check.main(argv) == status
    record = json.loads(out.read_text())
    if status == gpu_check.OUT_OF_TIME:
        assert record["skipped_for_time"] == ["cuda_tests"] and record["cuda_tests"]["skipped_for_time"] is True
    else:
        assert record["skipped_for_time"] == [] and "TimeoutExpired" in record["cuda_tests"]["error"]
