"""Benchmark: wall time per component of `make run` on the default data, and Trainer speed.

    python -m bench.pipeline_bench [--preset default] [--output DIR]

Runs exactly what `make run` runs (`crossfade run` on the simulator's `default` preset) with
caching off, in a fresh output folder, then prints each component's wall time, the whole
run's wall time and the Trainer's examples/second next to the targets. Prints figures only:
it never fails on a slow result.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from crossfade.pipeline.configs import PipelineConfig

TARGET_RUN_SECONDS = 300.0
TARGET_TRAINER_EXAMPLES_PER_SECOND = 30000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
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
        subprocess.run(cli + ["run", "--data", data, "--output", output, "--no-cache"], check=True)
        run_seconds = time.perf_counter() - started

        with open(PipelineConfig(data_dir=data, output_dir=output).last_run_path) as handle:
            record = json.load(handle)
        training = record.get("training", {})
        print(f"\ncrossfade pipeline benchmark: preset '{args.preset}', output {output}")
        print(f"{'step':<30}{'seconds':>10}")
        print(f"{'generate data':<30}{generate_seconds:>10.1f}")
        for component, seconds in record["component_seconds"].items():
            print(f"{component:<30}{seconds:>10.1f}")
        print(f"{'crossfade run (whole)':<30}{run_seconds:>10.1f}   target <= "
              f"{TARGET_RUN_SECONDS:.0f} s: "
              f"{'met' if run_seconds <= TARGET_RUN_SECONDS else 'MISSED'}")
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


if __name__ == "__main__":
    sys.exit(main())
