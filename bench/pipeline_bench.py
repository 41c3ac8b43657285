"""Benchmark: wall time and peak memory per component of `make run`, and Trainer speed.

    python -m bench.pipeline_bench [--preset default|large] [--runner local|beam] [--output DIR]

Runs exactly what `make run` runs (`crossfade run` on the simulator's `default` preset, or
another preset's data) with caching off, in a fresh output folder, then prints each
component's wall time and peak resident memory (of the run's process while the component ran,
pipeline/peak_memory.py), the whole run's wall time and the Trainer's examples/second next to
the targets (issue #18). With `--runner beam` the data components run in Beam worker
processes, which the per-component peaks do not see: the bench also prints the peak of the
whole process tree (bench/process_tree_memory.py). Prints figures only: it never fails on a
slow result.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.process_tree_memory import TreePeak  # noqa: TID251 -- bench itself, not product code
from crossfade.pipeline.configs import PipelineConfig

TARGET_RUN_SECONDS = {"default": 180.0, "large": 3600.0}
TARGET_PEAK_GIB = {"large": 12.0}
TARGET_TRAINER_EXAMPLES_PER_SECOND = 60000.0
GIB = 2.0**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--runner", choices=("local", "beam"), default="local",
                        help="crossfade run's orchestrator (beam: BeamDagRunner, one worker "
                             "per core)")
    parser.add_argument("--output", help="output folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    # A folder of our own is removed at the end.
    with (contextlib.nullcontext(args.output) if args.output
          else tempfile.TemporaryDirectory(prefix="crossfade-bench-")) as output:
        data = os.path.join(output, "data", args.preset)
        cli = [sys.executable, "-m", "crossfade.pipeline.cli"]

        started = time.perf_counter()
        subprocess.run(cli + ["generate", "--preset", args.preset, "--out", data], check=True)
        generate_seconds = time.perf_counter() - started

        started = time.perf_counter()
        run = subprocess.Popen(cli + ["run", "--runner", args.runner, "--data", data,
                                      "--output", output, "--no-cache"])
        tree = TreePeak(run.pid).start()
        if run.wait() != 0:
            raise subprocess.CalledProcessError(run.returncode, run.args)
        run_seconds = time.perf_counter() - started
        tree_peak = tree.stop()

        with open(PipelineConfig(data_dir=data, output_dir=output).last_run_path) as handle:
            record = json.load(handle)
        training = record.get("training", {})
        print(f"\ncrossfade pipeline benchmark: preset '{args.preset}', runner {args.runner}, "
              f"output {output}")
        print(f"{'step':<30}{'seconds':>10}{'peak RSS GiB':>14}")
        print(f"{'generate data':<30}{generate_seconds:>10.1f}")
        peaks = record.get("component_peak_bytes", {})
        max_rss = max([peak for peak in peaks.values() if peak] or [0])
        for component, seconds in record["component_seconds"].items():
            peak = peaks.get(component)
            print(f"{component:<30}{seconds:>10.1f}"
                  f"{(f'{peak / GIB:.2f}' if peak else 'n/a'):>14}")
        print(f"{'crossfade run (whole)':<30}{run_seconds:>10.1f}{max_rss / GIB:>14.2f}"
              f"{_against(run_seconds, TARGET_RUN_SECONDS.get(args.preset), 's')}")
        print(f"peak RSS of the run's process tree (sampled every {tree.interval} s, workers "
              f"included): {tree_peak / GIB:.2f} GiB")
        if args.preset in TARGET_PEAK_GIB:
            peak = max(max_rss, tree_peak)
            print(f"peak RSS of the run: {peak / GIB:.2f} GiB"
                  f"{_against(peak / GIB, TARGET_PEAK_GIB[args.preset], 'GiB')}")
        speed = training.get("examples_per_second", 0.0)
        epochs = ", ".join(f"{s:.1f}" for s in training.get("epoch_seconds", []))
        print(f"Trainer: {training.get('examples_trained', 0):,} examples, fit "
              f"{training.get('train_seconds', 0):.1f} s (epochs: {epochs} s; "
              f"{training.get('wall_examples_per_second', 0):,.0f} examples/s overall)")
        print(f"Trainer throughput after the first epoch: {speed:,.0f} examples/s   target >= "
              f"{TARGET_TRAINER_EXAMPLES_PER_SECOND:,.0f}: "
              f"{'met' if speed >= TARGET_TRAINER_EXAMPLES_PER_SECOND else 'MISSED'}")
        print(f"Trainer settings: {json.dumps(training.get('hyperparameters', {}))}")
    return 0


def _against(value: float, target, unit: str) -> str:
    """'   target <= T unit: met/MISSED', or nothing without a target."""
    if target is None:
        return ""
    return f"   target <= {target:.0f} {unit}: {'met' if value <= target else 'MISSED'}"


if __name__ == "__main__":
    sys.exit(main())
