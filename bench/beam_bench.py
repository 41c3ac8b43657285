"""Benchmark: the data components on the DirectRunner, in_memory versus multi_processing.

    python -m bench.beam_bench [--preset large] [--data DIR] [--workers N] [--output DIR]

Runs the pipeline's data components only (a partial run of `create_pipeline()` to Transform
and CatalogueExampleGen: PlaysExampleGen, CatalogueExampleGen, ImportSchemaGen, the
StreamQualifier where the pipeline has it, Transform) with caching off, once per Beam mode,
each in a fresh process and output folder, then prints each component's wall time and the
total side by side with the speed-up. Prints figures only: it never fails on a slow result.

`--preset large` (the default) generates ~12M plays (about 100 s and 2 GB) unless `--data`
names existing data; `--preset default` takes a few minutes in all on 2 cores.
"""
import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

MODES = ("in_memory", "multi_processing")
# The partial run: these and everything upstream of them (ImportSchemaGen, PlaysExampleGen,
# StreamQualifier where the pipeline has it).
DATA_SINKS = ("Transform", "CatalogueExampleGen")
_RESULT_PREFIX = "BENCH_RESULT "


def run_one(mode: str, data_dir: str, output_dir: str, workers: int) -> Dict[str, object]:
    """Runs the data components once with Beam `mode`; returns seconds per component and total."""
    import dataclasses

    from tfx.orchestration import metadata
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from crossfade.pipeline import beam_args
    from crossfade.pipeline.configs import PipelineConfig
    from crossfade.pipeline.pipeline import create_pipeline
    from crossfade.pipeline.progress import ComponentProgress
    args = beam_args.in_memory() if mode == "in_memory" else beam_args.multi_processing(workers)
    config = dataclasses.replace(PipelineConfig(data_dir=data_dir, output_dir=output_dir),
                                 beam_pipeline_args=args, enable_cache=False)
    pipeline = create_pipeline(config, metadata.sqlite_metadata_connection_config(
        config.metadata_path))
    started = time.perf_counter()
    with ComponentProgress() as progress:
        LocalDagRunner().run(pipeline, run_options=tfx_pipeline.RunOptions(
            to_nodes=list(DATA_SINKS)))
    return {"total": time.perf_counter() - started, "components": progress.seconds}


def _run_in_child(mode: str, data_dir: str, output_dir: str, workers: int) -> Dict[str, object]:
    # A fresh process per mode: neither run inherits the other's imports, caches or workers.
    command = [sys.executable, "-m", "bench.beam_bench", "--child", mode, "--data", data_dir,
               "--output", output_dir, "--workers", str(workers)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    line = next(text for text in result.stdout.splitlines() if text.startswith(_RESULT_PREFIX))
    return json.loads(line[len(_RESULT_PREFIX):])


def _print_table(results: Dict[str, Dict[str, object]], workers: int, preset: str,
                 data_dir: str) -> None:
    base, multi = results["in_memory"], results["multi_processing"]
    ran: List[str] = list(base["components"])
    print(f"\ncrossfade Beam benchmark: preset '{preset}' ({data_dir}), DirectRunner "
          f"in_memory (1 worker) vs multi_processing ({workers} workers), caching off")
    if "StreamQualifier" not in ran:
        print("(no StreamQualifier in this pipeline yet: stream qualification not measured)")
    print(f"{'component':<24}{'in_memory s':>13}{'multi_proc s':>14}{'speed-up':>10}")
    rows = [(name, base["components"].get(name), multi["components"].get(name))
            for name in ran]
    rows.append(("total (wall)", base["total"], multi["total"]))
    for name, single, parallel in rows:
        if single is None or parallel is None:
            print(f"{name:<24}{'-':>13}{'-':>14}{'-':>10}")
            continue
        print(f"{name:<24}{single:>13.1f}{parallel:>14.1f}{single / parallel:>9.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large", choices=("tiny", "default", "large"))
    parser.add_argument("--data", help="existing data folder (default: generate --preset)")
    parser.add_argument("--output", help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--workers", type=int, help="multi_processing workers (default: cores)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one measured run, in its own process
        result = run_one(args.child, args.data, args.output, args.workers)
        print(_RESULT_PREFIX + json.dumps(result), flush=True)
        # Collect TensorFlow functions now: at interpreter shutdown their finalizers print
        # "Exception ignored in AtomicFunction.__del__" noise.
        gc.collect()
        return 0

    from crossfade.components.listening_data.layout import MANIFEST_FILE
    from crossfade.pipeline import beam_args
    workers = args.workers or beam_args.local_cores()
    # A folder of our own is removed at the end.
    with (contextlib.nullcontext(args.output) if args.output
          else tempfile.TemporaryDirectory(prefix="crossfade-beam-bench-")) as output:
        data_dir = os.path.abspath(args.data or os.path.join(output, "data", args.preset))
        if not os.path.exists(os.path.join(data_dir, MANIFEST_FILE)) and not args.data:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "crossfade.pipeline.cli", "generate", "--preset",
                            args.preset, "--out", data_dir], check=True)
            print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)
        load_before = os.getloadavg()[0]
        results = {mode: _run_in_child(mode, data_dir, os.path.join(output, mode), workers)
                   for mode in MODES}
        _print_table(results, workers, args.preset if not args.data else "given", data_dir)
        # Other work on the machine skews both columns: say how busy it was.
        print(f"{workers} workers on {beam_args.local_cores()} cores; 1-minute load average "
              f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
