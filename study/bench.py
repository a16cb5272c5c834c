"""`python -m study.bench`: this project's spiking CNN against an snnTorch-tutorial-style reference.

The training step (T=25 and T=100), the data path and whole epochs, measured by `study.speed`
against `study.reference`; `--search` measures search quality instead (`study.search_bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from study import search_bench
from study.cli import count, nonempty_path, print_error, print_interrupted, seed
from study.errors import UserError
from study.files import write_atomically
from study.precision import PRECISIONS, resolve
from study.speed import BATCH, bench_data, checked_device, hardware, matmul_flops, measure_data_and_epochs, peak_rss_mb, step_speed
from study.writable import check_writable_file

def run(args: argparse.Namespace) -> dict:
    """Every measurement of the benchmark, as the JSON record it writes. The data comes first: N-MNIST from
    --data-dir that is absent or damaged stops the benchmark before anything is measured."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    repeats = 3 if args.quick else 5
    samples = (4 * BATCH, BATCH) if args.quick else (16 * BATCH, 4 * BATCH)  # (training, validation)
    with bench_data(args.data_dir, samples) as data:
        print(f"Measuring on {data.description}.", flush=True)
        precision = resolve(args.precision, device)
        measured: dict = {
            "settings": {"batch": BATCH, "device": str(device), "quick": args.quick, "train_samples": samples[0], "precision": precision},
            "hardware": hardware(device),
        }
        peak_flops = matmul_flops(device)
        measured["matmul_gflops"] = peak_flops / 1e9
        for num_steps in (25,) if args.quick else (25, 100):
            measured[f"step_T{num_steps}"] = step_speed(num_steps, device, precision, repeats, peak_flops)
        measured["step_speedup"] = measured["step_T25"]["speedup"]
        measured["compute_efficiency"] = measured["step_T25"]["ours_compute_efficiency"]
        measured |= measure_data_and_epochs(data, device, precision, consumption=measured["step_T25"]["ours_samples_per_s"])
    measured["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        measured["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return measured


GOALS = {"epoch_speedup": 2.0, "loading_over_consumption": 5.0}


def table(measured: dict) -> str:
    settings = measured["settings"]
    lines = [f"snn-study benchmark on {settings['device']} ({measured['data']}), batch {BATCH}, ours in {settings['precision']}"]
    lines.append(f"  dense fp32 matmul: {measured['matmul_gflops']:.0f} GFLOP/s")
    for key in sorted(k for k in measured if k.startswith("step_T")):
        step = measured[key]
        lines.append(
            f"  training step {key[5:]}: ours {step['ours_samples_per_s']:.0f} samples/s, reference "
            f"{step['reference_samples_per_s']:.0f} samples/s, speedup {step['speedup']:.2f}x, compute efficiency "
            f"{step['ours_compute_efficiency']:.1%} vs {step['reference_compute_efficiency']:.1%}"
        )
    lines.append(
        f"  data path: ours {measured['data_path']['ours_samples_per_s']:.0f} samples/s (event store of "
        f"{measured['store_samples']} samples decoded once in {measured['store_build_seconds']:.1f} s), reference "
        f"{measured['data_path']['reference_samples_per_s']:.0f} samples/s"
    )
    lines.append(f"  epoch (loading + training + validation): ours {measured['epoch']['ours_seconds']:.1f} s, reference {measured['epoch']['reference_seconds']:.1f} s")
    for key, goal in GOALS.items():
        verdict = "met" if measured[key] >= goal else f"missed by {goal / measured[key]:.2f}x"
        lines.append(f"  {key}: {measured[key]:.2f} (goal {goal:g}: {verdict})")
    lines.append(
        f"  step_speedup {measured['step_speedup']:.2f}; peak RSS: one trial's epoch in its own process "
        f"{measured['trial_peak_rss_mb']:.0f} MB (goal under 3000), this benchmark {measured['peak_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="T=25 only and fewer samples: about a minute on 2 CPU cores")
    parser.add_argument("--data-dir", type=nonempty_path, help="folder holding NMNIST/, checked before measuring (default: synthetic data in its format)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="our step's precision, as in a study (default auto: bf16 where native, else fp32)")
    parser.add_argument("--threads", type=count, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=nonempty_path, help="where to write the JSON report (default ./bench.json; --search: ./bench-search.json)")
    search = parser.add_argument_group("search quality (--search): short studies, see study.search_bench")
    search.add_argument("--search", action="store_true", help="measure search quality instead of speed")
    search.add_argument("--trials", type=count, default=4, help="trials per study (default 4)")
    search.add_argument("--epochs", type=count, default=10, help="epochs per trial at most (default 10)")
    search.add_argument("--seed", type=seed, default=0, help="the studies' --seed (default 0)")
    search.add_argument("--archs", default=",".join(search_bench.ALL_ARCHS), help="comma-separated architectures (default all)")
    search.add_argument("--data", default=",".join(search_bench.ALL_DATA), help=f"comma-separated data sets (default all: {', '.join(search_bench.ALL_DATA)})")
    args = parser.parse_args(argv)
    out = args.out or Path("bench-search.json" if args.search else "bench.json")
    try:
        check_writable_file(out, "--out")  # before minutes of measuring
        if args.search:
            archs, data = args.archs.split(","), args.data.split(",")
            unknown = sorted(set(archs) - set(search_bench.ALL_ARCHS)) + sorted(set(data) - set(search_bench.ALL_DATA))
            if unknown:
                raise UserError(f"Unknown architecture or data set {', '.join(unknown)}; valid: {', '.join(search_bench.ALL_ARCHS + search_bench.ALL_DATA)}.")
            return search_bench.main_search(args.trials, args.epochs, args.seed, archs, data, out)
        args.device = str(checked_device(args.device))
        cores = os.cpu_count() or 1
        if args.threads and args.threads > cores:  # torch allocates per thread: 99999 threads exhaust the memory
            raise UserError(f"--threads {args.threads}: this machine has {cores} CPU cores; give at most {cores}.")
        if args.threads:
            torch.set_num_threads(args.threads)
        measured = run(args)
    except UserError as error:
        return print_error(error)
    except KeyboardInterrupt:  # Ctrl-C: one line, as study.run says it, not a traceback
        return print_interrupted(f"nothing was measured to the end, and {out} was not written.")
    print(table(measured), flush=True)  # the figures reach the user even if writing the file fails
    try:
        write_atomically(out, json.dumps(measured, indent=2) + "\n")
    except OSError as error:
        return print_error(UserError(f"--out {out} could not be written ({error}); the figures are printed above."))
    print(f"Written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
