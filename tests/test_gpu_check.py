"""The prepared GPU check, run here as its CPU dry run: every section lands in its JSON, and nothing needs Ray or Optuna."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

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
