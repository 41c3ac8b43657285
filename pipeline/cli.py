"""`crossfade`: generate data, run the pipeline and inspect its results.

    crossfade generate --preset tiny|small|default|large --out DIR [--seed N]
    crossfade import --format lastfm-hetrec|spotify-history|csv --source DIR --out DIR
    crossfade run [--runner local|beam] [--workers N] [--data DIR] [--output DIR]
                  [--split auto|time|leave-last-out|random] [--split-seed N] [--eval-days N]
                  [--like-weight W] [--set NAME=VALUE ...] [--tune [--tune-trials N]]
    crossfade benchmark quality --dataset lastfm-hetrec|spotify-history|csv|simulated --data-dir DIR
                  [--split ...] [--seeds N] [--diversity 0,0.1,...] [--cold-items SHARE]
                  [--json OUT] [--out DIR] [--tune [--tune-trials N]]
    crossfade benchmark blend --dataset lastfm-hetrec|simulated|... --data-dir DIR [--seeds N]
                  [-k K] [--out DIR]
    crossfade compile --out FILE [--image IMAGE] [--data DIR] [--set NAME=VALUE ...]
                  [--tune [--tune-trials N]]
    crossfade status [--output DIR] [--json]
    crossfade simulate [--data DIR] [--output DIR] [--policy SPEC ...] [--server HOST:PORT]
                  [--users N] [--days D] [-k K] [--seed S] [--long-term on|off|both] [--out DIR]
                  [--rounds R [--set NAME=VALUE ...] | --estimate [--logging SPEC]]
    crossfade serve --model-base-path DIR [--model-name NAME] [--port 8500] [--rest-port 8501]
    crossfade recommend [--server HOST:PORT] (--user ID | --similar TRACK_ID) [-k K]
"""
import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Beam worker processes do not inherit the in-process warnings filter below.
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
# Google client libraries warn about Python 3.10 on import; TFX 1.16 supports 3.9-3.10 only.
warnings.filterwarnings("ignore", category=FutureWarning)

DEFAULT_OUTPUT = "outputs"
DEFAULT_PRESET = "default"


def _parse_assignment(text: str):
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _config(args: argparse.Namespace, data_dir: str):
    from crossfade.components.example_gen.split_protocols import AUTO, SplitProtocol
    from crossfade.pipeline.configs import PipelineConfig
    split = {"name": getattr(args, "split", None) or AUTO}
    if getattr(args, "eval_days", None):
        split["eval_days"] = args.eval_days
    if getattr(args, "split_seed", None) is not None:
        split["seed"] = args.split_seed
    settings = {"split": SplitProtocol(**split)}
    if getattr(args, "like_weight", None) is not None:
        settings["like_weight"] = args.like_weight
    if getattr(args, "no_cache", False):
        settings["enable_cache"] = False
    if getattr(args, "runner", "local") == "beam":
        from crossfade.pipeline import beam_args
        settings["beam_pipeline_args"] = beam_args.multi_processing(args.workers)
    settings.update(_tune_settings(args))
    return PipelineConfig.for_data(os.path.abspath(data_dir), os.path.abspath(args.output),
                                   overrides=dict(getattr(args, "set", None) or []),
                                   **settings)


def _tune_settings(args: argparse.Namespace) -> dict:
    """The PipelineConfig settings of --tune and --tune-trials ({} without --tune)."""
    trials = getattr(args, "tune_trials", None)
    if not getattr(args, "tune", False):
        if trials is not None:
            raise ValueError("--tune-trials needs --tune")
        return {}
    from crossfade.pipeline.configs import DEFAULT_TUNE_TRIALS
    return {"tune": True, "tune_trials": DEFAULT_TUNE_TRIALS if trials is None else trials}


def _generate(args: argparse.Namespace) -> int:
    from crossfade.components.listening_data.simulator import generator
    started = time.perf_counter()
    summary = generator.generate(args.preset, args.out, seed=args.seed)
    print(f"Generated preset '{summary.preset}' (seed {summary.seed}) in "
          f"{time.perf_counter() - started:.1f} s into {summary.out_dir}: "
          f"{summary.num_plays:,} plays by {summary.num_users:,} users "
          f"({summary.num_bots} bots) of {summary.num_tracks:,} tracks over "
          f"{summary.num_days} days")
    return 0


def _import(args: argparse.Namespace) -> int:
    from crossfade.components.listening_data import importers
    from crossfade.components.listening_data.sources import InputDataError
    started = time.perf_counter()
    try:
        summary = importers.import_dataset(
            args.format, args.source, args.out, keep_incognito=args.keep_incognito,
            keep_usernames=args.keep_usernames, pseudonym_key=args.pseudonym_key)
    except (InputDataError, ValueError) as error:
        print(f"error: {error}\nNothing was written to {args.out}.", file=sys.stderr)
        return 2
    dropped = ", ".join(f"{count:,} {reason.replace('_', ' ')}"
                        for reason, count in summary.dropped.items() if count)
    print(f"Imported {summary.format} from {args.source} into {summary.out_dir} in "
          f"{time.perf_counter() - started:.1f} s: {summary.interactions:,} interactions, "
          f"{summary.users:,} users, {summary.items:,} items"
          + (f"; dropped {dropped}" if dropped else "")
          + ("" if summary.has_timestamps else
             "; no timestamps (`crossfade run` splits it at random, 8:1:1 per user)")
          + (f"; user names pseudonymised with the key {summary.pseudonym_key} (keep it "
             "private, outside the data; `recommend --pseudonym-key` needs it)"
             if summary.pseudonym_key else ""))
    return 0


def _benchmark_quality(args: argparse.Namespace) -> int:
    from crossfade.components.listening_data.sources import InputDataError
    from crossfade.pipeline.quality import benchmark
    overrides = dict(args.set or [])
    try:
        benchmark.run(args.dataset, args.data_dir, args.out, split=args.split,
                      seeds=args.seeds, json_path=args.json, max_users=args.max_users,
                      hyperparameter_overrides=overrides, eval_days=args.eval_days or 7,
                      diversities=(benchmark.DEFAULT_DIVERSITIES if args.diversity is None
                                   else args.diversity),
                      cold_items=args.cold_items, pipeline_settings=_tune_settings(args))
    except (InputDataError, ValueError) as error:  # bad data, or a split the data cannot take
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nWrote {os.path.join(args.out, 'quality.md')}, "
          f"{os.path.join(args.out, 'recall_at_k.png')}, "
          f"{os.path.join(args.out, 'diversity_tradeoff.png')} and "
          f"{os.path.join(args.out, 'results.json')}"
          + (f"; JSON summary in {args.json}" if args.json else ""))
    return 0


def _benchmark_blend(args: argparse.Namespace) -> int:
    from crossfade.components.listening_data.sources import InputDataError
    from crossfade.pipeline.quality import blend_benchmark
    try:
        blend_benchmark.run(args.dataset, args.data_dir, args.out, seeds=args.seeds, k=args.k,
                            split=args.split, eval_days=args.eval_days or 7)
    except (InputDataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nWrote {os.path.join(args.out, 'blend.md')} and "
          f"{os.path.join(args.out, 'results.json')}")
    return 0


def _floats(text: str) -> List[float]:
    """A comma-separated list of numbers (the range is the benchmark's to check)."""
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}") from None


def _share(text: str) -> float:
    """A share in [0, 1) (checked here, before minutes of import)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _trials(text: str) -> int:
    """A number of trials: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    from crossfade.pipeline.configs import DEFAULT_TUNE_TRIALS
    parser.add_argument("--tune", action="store_true",
                        help="run the Tuner before the Trainer: trials over its search space "
                        "(components/tuner/search_space.py), each trained on train and scored "
                        "on the eval split by Recall@50; the Trainer trains the winner")
    parser.add_argument("--tune-trials", type=_trials, metavar="N",
                        help=f"with --tune: trials to run (default {DEFAULT_TUNE_TRIALS}; the "
                        "first is the configured hyperparameters)")


def _default_data(output: str) -> str:
    """The embedded default data set, generated on first use."""
    from crossfade.components.listening_data.layout import MANIFEST_FILE
    from crossfade.components.listening_data.simulator import generator
    data_dir = os.path.join(output, "data", DEFAULT_PRESET)
    if not os.path.exists(os.path.join(data_dir, MANIFEST_FILE)):
        print(f"No --data given: generating the '{DEFAULT_PRESET}' simulator preset into "
              f"{data_dir}", flush=True)
        generator.generate(DEFAULT_PRESET, data_dir, seed=0)
    return data_dir


def _run(args: argparse.Namespace) -> int:
    from crossfade.components.listening_data.sources import InputDataError, detect_layout
    from crossfade.pipeline import beam_runner, local_runner, run_lock, run_summary
    from crossfade.pipeline.progress import ComponentProgress
    data_dir = args.data or _default_data(args.output)
    try:
        detect_layout(data_dir)
        config = _config(args, data_dir)
    except (InputDataError, ValueError) as error:  # bad data, or a bad --set / --split
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Running pipeline '{config.pipeline_name}' on {config.data_dir}\n"
          f"  outputs: {config.output_dir}", flush=True)
    started = time.perf_counter()
    with ComponentProgress(verbose=args.verbose) as progress:
        try:
            (beam_runner if args.runner == "beam" else local_runner).run(config)
        except run_lock.RunInProgressError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except Exception as error:  # reported below, nothing was pushed
            message = _input_error_message(error)
            if message is None:
                raise
            print(f"error: bad input data: {message}\nNothing was pushed; "
                  f"{config.serving_base_path} is unchanged.", file=sys.stderr)
            return 2
    summary = run_summary.latest_run(config)
    print(f"\nPipeline finished in {time.perf_counter() - started:.1f} s")
    print(summary.render())
    with open(config.last_run_path, "w") as handle:
        record = dataclasses.asdict(summary)
        record["component_seconds"] = progress.seconds
        record["component_peak_bytes"] = progress.peak_bytes
        json.dump(record, handle, indent=2, sort_keys=True)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from crossfade.components.simulation import experiment
    from crossfade.pipeline.configs import PipelineConfig
    from crossfade.pipeline.simulation import command, estimate
    data_dir = args.data or _default_data(args.output)
    try:
        settings = experiment.SimulationSettings(users=args.users, days=args.days, k=args.k,
                                              seed=args.seed)
        config = PipelineConfig.for_data(os.path.abspath(data_dir), os.path.abspath(args.output))
        out = args.out or os.path.join(args.output, "simulation")
        estimate_from = (args.logging or estimate.DEFAULT_LOGGING) if args.estimate else None
        specs = args.policy or command.default_specs(args.rounds, estimate_from)
        result = command.simulate(data_dir, config.serving_base_path, specs, out, settings,
                                  args.long_term, args.server, args.rounds, estimate_from,
                                  dict(args.set or []))
    except (ValueError, FileExistsError) as error:  # bad settings, spec, export or data
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nSimulated in {result['wall_seconds']:.1f} s; "
          f"report: {os.path.join(out, 'report.md')}")
    return 0


def _input_error_message(error: BaseException) -> Optional[str]:
    """The InputDataError behind `error` (Beam may wrap it), or None."""
    from crossfade.components.listening_data.sources import InputDataError
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, InputDataError):
            return str(error).split(" [while running")[0]
        error = error.__cause__ or error.__context__
    return None


def _compile(args: argparse.Namespace) -> int:
    """Compiles the cluster pipeline (settings: kubeflow/cluster_config.py) for KFP v2."""
    from crossfade.kubeflow import cluster_config, runner
    from crossfade.pipeline.configs import PipelineConfig
    env = dict(os.environ)
    if args.image:
        env["CROSSFADE_IMAGE"] = args.image
    if args.data:
        env["CROSSFADE_DATA_DIR"] = os.path.abspath(args.data)
    try:
        base = PipelineConfig.for_data(env.get("CROSSFADE_DATA_DIR", ""), "",
                                       overrides=dict(args.set or []),
                                       **_tune_settings(args))
        config = cluster_config.pipeline_config(env, base)
        path = runner.compile_pipeline(config, args.out, cluster_config.image(env),
                                       cluster_config.data_root(env),
                                       cluster_config.step_resources(env, config.tune))
    except (KeyError, ValueError) as error:  # a missing setting, a bad --set
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    print(f"Compiled the KFP v2 pipeline spec into {path} (image {cluster_config.image(env)}, "
          f"pipeline root {config.pipeline_root})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from crossfade.pipeline import run_summary
    from crossfade.pipeline.configs import PipelineConfig
    config = PipelineConfig(data_dir="", output_dir=os.path.abspath(args.output))
    try:
        summary = run_summary.latest_run(config)
    except (FileNotFoundError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.to_json() if args.json else summary.render())
    return 0


def _add_split_arguments(parser: argparse.ArgumentParser, with_seed: bool = True) -> None:
    from crossfade.components.example_gen import split_protocols
    parser.add_argument("--split", choices=(split_protocols.AUTO,) + split_protocols.PROTOCOLS,
                        help="split protocol (default auto: time with timestamps, random "
                        "8:1:1 per user without)")
    if with_seed:
        parser.add_argument("--split-seed", type=int, help="seed of the random split")
    parser.add_argument("--eval-days", type=int,
                        help="time split: days at the end held out for evaluation")


def _add_benchmark_data_arguments(parser: argparse.ArgumentParser, folder: str) -> None:
    """What a benchmark trains on: the dataset, its folder, the split and the seeds."""
    from crossfade.components.listening_data.importers import FORMATS
    from crossfade.pipeline.quality import SIMULATED
    parser.add_argument("--dataset", required=True, choices=FORMATS + (SIMULATED,))
    parser.add_argument("--data-dir", required=True,
                        help=f"{folder} (for {SIMULATED}: `crossfade generate`'s)")
    _add_split_arguments(parser, with_seed=False)
    parser.add_argument("--seeds", type=int, default=3, help="splits (and model seeds) 0..N-1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossfade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write simulated listening data")
    from crossfade.components.listening_data.simulator.presets import PRESETS
    generate.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET)
    generate.add_argument("--out", required=True, help="folder to write")
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(handler=_generate)

    from crossfade.components.listening_data.importers import FORMATS
    import_ = commands.add_parser(
        "import", help="convert a real listening-data export into a folder `run` reads")
    import_.add_argument("--format", required=True, choices=FORMATS)
    import_.add_argument("--source", required=True, help="the export's folder")
    import_.add_argument("--out", required=True, help="folder to write (replaced atomically)")
    import_.add_argument("--keep-incognito", action="store_true",
                         help="spotify-history: keep plays made in incognito mode (dropped "
                              "by default)")
    names = import_.add_mutually_exclusive_group()
    names.add_argument("--pseudonym-key", metavar="FILE",
                       help="spotify-history: key file of the user-name pseudonyms, reused if "
                            "it exists, else created (default: <out>.pseudonym-key)")
    names.add_argument("--keep-usernames", action="store_true",
                       help="spotify-history: write user names verbatim, not pseudonymised "
                            "(e.g. your own single-user export)")
    import_.set_defaults(handler=_import)

    run = commands.add_parser("run", help="run the pipeline locally")
    run.add_argument("--runner", choices=("local", "beam"), default="local",
                     help="local: LocalDagRunner, Beam in memory; beam: BeamDagRunner, Beam "
                     "DirectRunner in multi_processing mode")
    run.add_argument("--workers", type=int,
                     help="Beam worker processes with --runner beam (default: one per core)")
    run.add_argument("--data", help="simulator output or a folder with interactions.csv "
                     "[+ items.csv]; default: the embedded default data set")
    run.add_argument("--output", default=DEFAULT_OUTPUT,
                     help="pipeline root, metadata and serving model base path")
    _add_split_arguments(run)
    run.add_argument("--like-weight", type=float, metavar="W",
                     help="weight of a liked track's training plays (likes.csv) relative to "
                     "a plain play's; 0 leaves likes unread (default: PipelineConfig's)")
    run.add_argument("--set", type=_parse_assignment, action="append", metavar="NAME=VALUE",
                     help="override a hyperparameter, e.g. --set epochs=3")
    _add_tune_arguments(run)
    run.add_argument("--no-cache", action="store_true", help="re-run every component")
    run.add_argument("--verbose", action="store_true",
                     help="show all TFX, TensorFlow and Beam logs")
    run.set_defaults(handler=_run)

    compile_ = commands.add_parser(
        "compile", help="compile for Kubeflow Pipelines / Vertex AI (see kubeflow/README.md)")
    compile_.add_argument("--out", required=True,
                          help=".yaml: PipelineSpec for kfp.Client; .json: PipelineJob")
    compile_.add_argument("--image", help="pipeline image (default: $CROSSFADE_IMAGE)")
    compile_.add_argument("--data", help="local folder with the data's layout "
                          "(default: $CROSSFADE_DATA_DIR)")
    compile_.add_argument("--set", type=_parse_assignment, action="append",
                          metavar="NAME=VALUE", help="override a hyperparameter")
    _add_tune_arguments(compile_)
    compile_.set_defaults(handler=_compile)

    benchmark = commands.add_parser("benchmark", help="benchmarks")
    benchmarks = benchmark.add_subparsers(dest="benchmark", required=True)
    quality = benchmarks.add_parser(
        "quality", help="two-tower vs most-popular, item-kNN, EASE and iALS on real data",
        description="Imports the dataset, trains through the pipeline once per seed and "
        "compares full-ranking Recall@10, NDCG@10, Hit@10, ILD@10, novelty@10 and coverage@10 "
        "with the baselines on the same split, plus the two-tower's `recommend` at each "
        "--diversity and without recent tracks (pipeline/quality/benchmark.py).")
    _add_benchmark_data_arguments(quality, "the dataset's folder")
    quality.add_argument("--diversity", type=_floats, metavar="D,D,...",
                         help="the two-tower's `recommend` re-ranking settings in [0, 1] to "
                         "sweep (default 0: pure relevance, a check of the served path)")
    quality.add_argument("--cold-items", type=_share, default=0.0, metavar="SHARE",
                         help="hold this share of items out of train and eval (every play "
                         "of them is test) and report cold and warm Recall@10; e.g. 0.1")
    quality.add_argument("--json", help="also write {method: {metric: {mean, per_seed}}} here")
    quality.add_argument("--out", default=os.path.join(DEFAULT_OUTPUT, "quality"),
                         help="working folder: imported data, pipeline runs, report")
    quality.add_argument("--max-users", type=int,
                         help="use only the first N users (a quick run on a slice)")
    quality.add_argument("--set", type=_parse_assignment, action="append",
                         metavar="NAME=VALUE", help="override a two-tower hyperparameter")
    _add_tune_arguments(quality)
    quality.set_defaults(handler=_benchmark_quality)
    blend = benchmarks.add_parser(
        "blend", help="one list for two friends: each member's Recall@k against their own",
        description="Trains through the pipeline once per seed (the quality benchmark's "
        "split) and compares, for friend pairs and random pairs, each member's Recall@k on "
        "the `blend` list of every strategy with their solo list (pipeline/quality/"
        "blend_benchmark.py).")
    _add_benchmark_data_arguments(blend, "the dataset's folder, with friends")
    blend.add_argument("-k", type=int, default=20, help="list length (default 20)")
    blend.add_argument("--out", default=os.path.join(DEFAULT_OUTPUT, "blend"),
                       help="working folder: imported data, pipeline runs, report")
    blend.set_defaults(handler=_benchmark_blend)

    simulate = commands.add_parser(
        "simulate", help="an A/B test of policies against the simulator's listeners",
        description="Serves each policy's lists to simulated listeners for D days and reports "
        "stream and skip rates, minutes, likes, new releases, coverage and the diversity of "
        "what was consumed (pipeline/simulation/).")
    simulate.add_argument("--data", help="simulator-made data (default: the embedded default "
                          "data set)")
    simulate.add_argument("--output", default=DEFAULT_OUTPUT,
                          help="the pipeline output whose latest pushed model is `model`")
    simulate.add_argument("--policy", action="append", metavar="SPEC",
                          help="model, chart, random or an export's path, optionally with "
                          ":diversity=D,explore=E (repeat; default: "
                          "model, model:diversity=0.3, model:explore=0.1, chart, random)")
    simulate.add_argument("--server", metavar="HOST:PORT",
                          help="`model` is what this TF Serving gRPC server serves")
    simulate.add_argument("--users", type=int, help="the first N human listeners (default all)")
    simulate.add_argument("--days", type=int, default=1, help="simulated days")
    simulate.add_argument("-k", type=int, default=10, help="tracks per list")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--long-term", choices=("on", "off", "both"), default="on",
                          help="satiation and discovery (default on)")
    simulate.add_argument("--out", help="report folder (default <output>/simulation)")
    experiments = simulate.add_mutually_exclusive_group()
    experiments.add_argument("--rounds", type=int, metavar="R",
                            help="closed loop: each round's lists and organic plays become the "
                            "next span and the pipeline retrains (model policies only)")
    experiments.add_argument("--estimate", action="store_true",
                            help="estimate the policies' stream rates by IPS/SNIPS from the "
                            "--logging policy's logs, beside their on-policy values")
    simulate.add_argument("--logging", metavar="SPEC", help="the exploring policy whose logs "
                          "--estimate uses (default model:explore=0.2)")
    simulate.add_argument("--set", type=_parse_assignment, action="append", metavar="NAME=VALUE",
                          help="with --rounds: override a hyperparameter of the retraining")
    simulate.set_defaults(handler=_simulate)

    from crossfade.serving import commands as serving_commands  # serve, recommend
    serving_commands.add_commands(commands)

    status = commands.add_parser("status", help="latest run's metrics, blessing and push")
    status.add_argument("--output", default=DEFAULT_OUTPUT)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
