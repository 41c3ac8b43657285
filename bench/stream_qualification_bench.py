"""Benchmark: what stream qualification does to quality, and how well it finds bots.

    python -m bench.stream_qualification_bench [--preset default] [--output DIR]

On one generated data set, runs the pipeline twice in separate output folders:

* `unweighted`: every non-bot play is a full positive (skip_weight = short_play_weight = 1);
* `weighted`: the product rules (skips x0.1, other short plays x0.5).

Both are evaluated by the Evaluator on the same eval split (streams of non-bot accounts), so the
printed Recall@K / NDCG@10 show the effect of the weighting alone. It also prints the bot
filter's precision and recall against the simulator's ground truth (truth/bots.csv). Prints
figures only; never fails on a result.
"""
import argparse
import contextlib
import dataclasses
import glob
import os
import tempfile

import pandas as pd

from crossfade.components.listening_data import layout
from crossfade.components.listening_data.simulator import generator
from crossfade.components.stream_qualification import executor
from crossfade.pipeline import local_runner, run_summary
from crossfade.pipeline.configs import PipelineConfig

METRICS = ("recall@10", "recall@50", "recall@100", "ndcg@10", "popularity_recall@50")


def _detected_bots(config: PipelineConfig) -> set:
    path, = glob.glob(os.path.join(config.pipeline_root, "StreamQualifier",
                                   "qualified_examples", "*", executor.BOTS_FILE))
    with open(path) as handle:
        return set(handle.read().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output",
                        help="data and runs folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    # A folder of our own is removed at the end.
    with (contextlib.nullcontext(args.output) if args.output
          else tempfile.TemporaryDirectory(prefix="crossfade-qualification-")) as root:
        data_dir = os.path.join(root, "data")
        generator.generate(args.preset, data_dir, seed=0)

        base = PipelineConfig(data_dir=data_dir, output_dir="")
        variants = {
            "unweighted": dataclasses.replace(
                base.qualification_rules, skip_weight=1.0, short_play_weight=1.0),
            "weighted": base.qualification_rules,
        }
        results = {}
        for name, rules in variants.items():
            config = dataclasses.replace(base, output_dir=os.path.join(root, name),
                                         qualification_rules=rules)
            print(f"running '{name}' ({rules}) ...", flush=True)
            local_runner.run(config)
            results[name] = run_summary.latest_run(config)

        print(f"\nStream qualification on preset '{args.preset}' (seed 0), eval = streams of the "
              "last 3 days, non-bot accounts")
        print(f"{'metric':<24}" + "".join(f"{name:>14}" for name in results))
        for metric in METRICS:
            print(f"{metric:<24}" + "".join(f"{summary.metrics.get(metric, float('nan')):>14.4f}"
                                              for summary in results.values()))
        counts = results["weighted"].stream_counts
        print("counts: " + ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items())))

        truth = set(pd.read_csv(os.path.join(data_dir, layout.TRUTH_DIR,
                                             layout.BOTS_FILE))["user_id"])
        detected = _detected_bots(dataclasses.replace(base, output_dir=os.path.join(root,
                                                                                    "weighted")))
        true_positives = len(truth & detected)
        precision = true_positives / len(detected) if detected else float("nan")
        recall = true_positives / len(truth) if truth else float("nan")
        print(f"bot filter: {len(detected)} flagged, {len(truth)} true bots, "
              f"precision {precision:.3f}, recall {recall:.3f} (target >= 0.95 each)")


if __name__ == "__main__":
    main()
