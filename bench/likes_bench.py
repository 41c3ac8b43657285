"""Benchmark: what treating a like as a stronger positive does to replay quality.

    python -m bench.likes_bench --data DIR --work DIR [--weights 0,2,4] [--seeds 0,1]
                                [--set NAME=VALUE ...]

For every like weight (`PipelineConfig.like_weight`; 0 leaves ``likes.csv`` unread, the
pipeline as it was before likes) and every training seed, runs the real pipeline on ``--data``
(simulator-made, with its ``likes.csv``) into ``<work>/like-weight-<w>`` -- the seeds of one
weight share that output, so TFX's cache reuses its ExampleGen, StreamQualifier and Transform
-- and reads the Evaluator's Recall@10, Recall@50 and NDCG@10 on the eval split (streams only,
the same plays whatever the weight). Prints each run, then per weight the mean and standard
deviation over seeds and the change against weight 0. Prints figures only.
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

METRICS = ("recall@10", "recall@50", "ndcg@10")


def _numbers(text: str, kind):
    return [kind(item) for item in text.split(",") if item]


def _train(data: str, output: str, like_weight: float, overrides: dict) -> dict:
    from crossfade.pipeline import local_runner, run_summary
    from crossfade.pipeline.configs import PipelineConfig
    config = PipelineConfig.for_data(os.path.abspath(data), os.path.abspath(output),
                                     overrides=overrides, like_weight=like_weight)
    started = time.perf_counter()
    local_runner.run(config)
    summary = run_summary.latest_run(config)
    return {**{name: summary.metrics.get(name, float("nan")) for name in METRICS},
            "seconds": time.perf_counter() - started, "counts": summary.read_counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", required=True, help="simulator-made data with likes.csv")
    parser.add_argument("--work", required=True, help="one pipeline output per like weight")
    parser.add_argument("--weights", default="0,2,4")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="hyperparameter override for every run (JSON value)")
    args = parser.parse_args()
    overrides = {name: json.loads(value) for name, _, value in
                 (item.partition("=") for item in args.set)}
    runs = {}
    for weight in _numbers(args.weights, float):
        for seed in _numbers(args.seeds, int):
            result = _train(args.data, os.path.join(args.work, f"like-weight-{weight:g}"),
                            weight, {**overrides, "seed": seed})
            runs.setdefault(weight, []).append(result)
            print(f"like_weight {weight:g} seed {seed}: " + ", ".join(
                f"{name} {result[name]:.4f}" for name in METRICS)
                + f" ({result['seconds']:.0f} s); likes: {result['counts']}", flush=True)
    base = {name: statistics.mean(r[name] for r in runs[min(runs)]) for name in METRICS}
    print(f"{'like_weight':>11} " + " ".join(f"{name + ' mean ± sd':>22} {'change':>8}"
                                              for name in METRICS))
    for weight, results in sorted(runs.items()):
        cells = []
        for name in METRICS:
            values = [r[name] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            mean = statistics.mean(values)
            cells.append(f"{mean:>13.4f} ± {spread:.4f} {100 * (mean / base[name] - 1):>+7.1f}%")
        print(f"{weight:>11g} " + " ".join(cells))


if __name__ == "__main__":
    main()
