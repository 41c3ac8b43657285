"""Benchmark: wall time and peak memory per component of `make run`, and Trainer speed.

    python -m bench.pipeline_bench [--preset default|large] [--runner local|beam] [--output DIR]

Runs exactly what `make run` runs (`crossfade run` on the simulator's `default` preset, or
another preset's data) with caching off, in a fresh output folder, then prints each
component's wall time and peak resident memory (of the run's process while the component ran,
pipeline/peak_memory.py), the whole run's wall time and the Trainer's examples/second next to
the targets (issue #18). With `--runner beam` the data components run in Beam worker
processes, which the per-component peaks do not see: the bench also samples the whole process
tree (bench/process_tree_memory.py) and prints its peak summed RSS and PSS per component (the
component is the one the run's progress lines last said was running) and for the run, and the
run's process's own PSS in each component's first sample and at the tree's peak in it (memory
it carried in, against memory it took there). The memory target is checked against the larger
of the run process's own peak and the tree's PSS: the tree's summed RSS counts TensorFlow's
shared libraries once per worker. Prints figures only: it never fails on a slow result.
"""
import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Optional, TextIO

from bench.process_tree_memory import Memory, TreePeak  # noqa: TID251 -- bench itself, not product code
from crossfade.pipeline.configs import PipelineConfig

TARGET_RUN_SECONDS = {"default": 180.0, "large": 3600.0}
TARGET_PEAK_GIB = {"large": 12.0}
TARGET_TRAINER_EXAMPLES_PER_SECOND = 60000.0
GIB = 2.0**30
_COMPONENT_STARTED = re.compile(r"-> (\S+) \.\.\.$")


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
                                      "--output", output, "--no-cache"],
                               stderr=subprocess.PIPE, text=True, errors="replace")
        tree = TreePeak(run.pid).start()
        _follow_progress(run.stderr, tree)
        if run.wait() != 0:
            raise subprocess.CalledProcessError(run.returncode, run.args)
        run_seconds = time.perf_counter() - started
        tree_peak = tree.stop()

        with open(PipelineConfig(data_dir=data, output_dir=output).last_run_path) as handle:
            record = json.load(handle)
        training = record.get("training", {})
        print(f"\ncrossfade pipeline benchmark: preset '{args.preset}', runner {args.runner}, "
              f"output {output}")
        print(f"{'step':<30}{'seconds':>10}{'peak RSS GiB':>14}{'tree RSS GiB':>14}"
              f"{'tree PSS GiB':>14}{'run PSS in GiB':>16}{'at peak GiB':>13}")
        print(f"{'generate data':<30}{generate_seconds:>10.1f}")
        peaks = record.get("component_peak_bytes", {})
        max_rss = max([peak for peak in peaks.values() if peak] or [0])
        for component, seconds in record["component_seconds"].items():
            # A component shorter than the sampling interval may have no sample.
            in_tree = tree.peak_by_label.get(component, Memory(0, 0))
            entering = tree.first_by_label.get(component, Memory(0, 0))
            print(f"{component:<30}{seconds:>10.1f}{_gib(peaks.get(component))}"
                  f"{_gib(in_tree.rss)}{_gib(in_tree.pss)}{_gib(entering.root_pss, 16)}"
                  f"{_gib(in_tree.root_pss, 13)}")
        print(f"{'crossfade run (whole)':<30}{run_seconds:>10.1f}{_gib(max_rss)}"
              f"{_gib(tree_peak.rss)}{_gib(tree_peak.pss)}"
              f"{_against(run_seconds, TARGET_RUN_SECONDS.get(args.preset), 's')}")
        print(f"(tree: the run's process and its Beam workers, sampled every {tree.interval} s; "
              f"run PSS: the run's process alone, in the component's first sample and at the "
              f"tree's peak in it)")
        if args.preset in TARGET_PEAK_GIB:
            peak = max(max_rss, tree_peak.pss)
            print(f"peak memory of the run (own peak RSS, or the tree's PSS if larger): "
                  f"{peak / GIB:.2f} GiB"
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


def _follow_progress(stderr: TextIO, tree: TreePeak) -> None:
    """Echoes the run's progress lines and labels the tree's samples with the component that
    the last "-> Component ..." line (pipeline/progress.py) started."""
    for line in stderr:
        sys.stderr.write(line)
        started = _COMPONENT_STARTED.match(line)
        if started:
            tree.label = started.group(1)


def _gib(nbytes: Optional[int], width: int = 14) -> str:
    """A right-aligned GiB column, 'n/a' where there is no figure."""
    return f"{(f'{nbytes / GIB:.2f}' if nbytes else 'n/a'):>{width}}"


def _against(value: float, target, unit: str) -> str:
    """'   target <= T unit: met/MISSED', or nothing without a target."""
    if target is None:
        return ""
    return f"   target <= {target:.0f} {unit}: {'met' if value <= target else 'MISSED'}"


if __name__ == "__main__":
    sys.exit(main())
