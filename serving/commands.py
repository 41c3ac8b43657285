"""`crossfade serve`, `crossfade recommend` and `crossfade check-model`.

    crossfade serve --model-base-path DIR [--model-name crossfade] [--port 8500]
                    [--rest-port 8501] [--model-config-file FILE] [--label NAME=VERSION ...]
                    [--max_num_load_retries N] [--load_retry_interval_micros US]
    crossfade recommend [--server HOST:PORT] [--protocol grpc|rest]
                        (--user ID [--recent T1,T2,...] | --similar TRACK_ID |
                         --blend U1,U2[,...] [--strategy NAME]) [-k K]
                        [--exclude TRACK ...] [--exclude-listened] [--diversity D]
                        [--explore E] [--seed N] [--new-releases DAYS]
                        [--version N | --label NAME] [--pseudonym-key FILE] [--json]
    crossfade check-model PATH [--json]        (serving/check_model.py)

`recommend` prints rank, track id, title, artist and score per track (the propensity too
with `--explore` > 0); `--json` prints the same fields. The controls (`--exclude`,
`--exclude-listened`, `--diversity`, `--explore`, `--seed`, `--new-releases`: only tracks
released in the last DAYS days) go to the model's `recommend`
signature and apply to `--user` only; a model that predates it answers controlled requests
with an error (`crossfade.serving.client`). `--server` defaults to loopback on the
protocol's default port. `--blend` asks the `blend` signature for one list for 2 to 5
listeners (their stored histories; `--exclude` applies) and prints whom each track is for.
The server's defaults (ports, limits, batch size) are read from
their homes (`ServerOptions`, `RequestLimits`, `BatchingOptions`), not restated here.

`add_commands` registers them on the `crossfade` CLI's subparsers; `python -m
crossfade.serving.commands` runs them on their own.
"""
import argparse
import json
import logging
import os
import signal
import sys
import time
from typing import Callable, List, Optional, Tuple

from crossfade.serving.model_base_path import MODEL_NAME


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return parse


_non_negative, _positive = _at_least(0), _at_least(1)


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def add_commands(subparsers) -> None:
    """Registers `serve` and `recommend` on an argparse subparsers object."""
    serve = subparsers.add_parser(
        "serve", help="serve models over TF Serving's gRPC and REST APIs (local server)",
        description="A local server speaking TF Serving's gRPC (PredictionService, "
                    "ModelService) and REST APIs over a model base path; it loads new "
                    "versions as they are pushed. Production runs the real "
                    "tensorflow/serving image (serving/config, kubeflow/serving).")
    serve.add_argument("--model-base-path",
                       help="folder of numbered versions (the Pusher's "
                            "<output>/serving/crossfade)")
    serve.add_argument("--model-name", default=MODEL_NAME)
    serve.add_argument("--model-config-file",
                       help="TF Serving ModelServerConfig (text); --model-base-path, if "
                            "given, replaces the base path of --model-name's entry")
    serve.add_argument("--label", action="append", default=[], metavar="NAME=VERSION",
                       help="version label for --model-name, e.g. stable=1700000000")
    # The defaults live with the server (TF Serving's where it has one), not here.
    from crossfade.serving.batching import BatchingOptions
    from crossfade.serving.model_server import ServerOptions
    defaults = ServerOptions()
    serve.add_argument("--host", default=defaults.host,
                       help="interface to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=defaults.grpc_port, help="gRPC port")
    serve.add_argument("--rest-port", type=int, default=defaults.rest_port,
                       help="REST port; 0 = no REST")
    serve.add_argument("--poll-seconds", type=float, default=defaults.poll_seconds,
                       help="how often to look for new versions")
    serve.add_argument("--max-k", type=int, default=defaults.limits.max_k,
                       help="largest k a request may ask")
    serve.add_argument("--max-rows", type=int, default=defaults.limits.max_rows,
                       help="largest batch per request")
    serve.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes)
    serve.add_argument("--no-batching", action="store_true",
                       help="run every request on its own model call")
    serve.add_argument("--max-batch-size", type=int, default=BatchingOptions.max_batch_size)
    serve.add_argument("--batch-threads", type=int, default=0,
                       help="model calls at once (default: CPU cores, at most 4)")
    serve.add_argument("--no-warmup", action="store_true",
                       help="skip assets.extra/tf_serving_warmup_requests")
    serve.add_argument("--wait-seconds", type=float,
                       help="give up if no version loads in this time (default: wait)")
    serve.add_argument("--max_num_load_retries", type=_non_negative,
                       default=defaults.max_num_load_retries,
                       help="retry a failed version load this many times (TF Serving's flag)")
    serve.add_argument("--load_retry_interval_micros", type=_non_negative,
                       default=defaults.load_retry_interval_micros,
                       help="microseconds between load retries (TF Serving's flag)")
    serve.add_argument("--verbose", action="store_true")
    serve.set_defaults(handler=_serve)

    recommend = subparsers.add_parser(
        "recommend", help="ask a model server for recommendations or similar tracks")
    recommend.add_argument("--server", help=f"HOST:PORT (default 127.0.0.1:"
                                            f"{defaults.grpc_port} for gRPC, "
                                            f"{defaults.rest_port} for REST)")
    recommend.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    recommend.add_argument("--model-name", default=MODEL_NAME)
    what = recommend.add_mutually_exclusive_group(required=True)
    what.add_argument("--user", help="user id to recommend for")
    what.add_argument("--similar", metavar="TRACK_ID", help="tracks similar to this one")
    what.add_argument("--blend", metavar="U1,U2[,...]",
                      help="one list for 2 to 5 listeners (comma-separated user ids)")
    recommend.add_argument("--strategy", help="--blend: how members' tastes are combined: "
                           "average, least-misery or fair-interleave (default: "
                           "crossfade.serving.signatures.DEFAULT_BLEND_STRATEGY)")
    recommend.add_argument("--pseudonym-key", metavar="FILE",
                           help="map --user NAME to its pseudonym under this key file "
                                "(from `crossfade import --format spotify-history`)")
    recommend.add_argument("--recent", action="append", default=[],
                           help="recently played track ids, most recent first "
                                "(comma-separated or repeated)")
    recommend.add_argument("--platform", default="")
    recommend.add_argument("-k", type=int, default=10, help="how many tracks")
    recommend.add_argument("--exclude", action="append", default=[], metavar="TRACK",
                           help="never recommend this track id (repeatable or "
                                "comma-separated)")
    recommend.add_argument("--exclude-listened", action="store_true",
                           help="never recommend the --recent tracks either")
    recommend.add_argument("--diversity", type=_unit_interval, default=0.0,
                           help="0 (default): pure relevance; up to 1: re-rank for variety")
    recommend.add_argument("--explore", type=_unit_interval, default=0.0,
                           help="chance in [0, 1] that each slot is sampled instead of taken "
                                "best first (default 0)")
    recommend.add_argument("--seed", type=int, default=0,
                           help="sampler seed, for repeatable --explore (0: derived from the "
                                "request: same user, tracks and time, same list)")
    recommend.add_argument("--new-releases", type=_positive, metavar="DAYS", default=0,
                           help="only tracks released in the last DAYS days, today included "
                                "(a 'new for you' shelf; needs release dates in the catalogue)")
    choice = recommend.add_mutually_exclusive_group()
    choice.add_argument("--version", type=int, help="model version number")
    choice.add_argument("--label", help="model version label, e.g. stable or canary")
    recommend.add_argument("--timeout", type=float, default=5.0, help="deadline, seconds")
    recommend.add_argument("--json", action="store_true", help="print JSON instead")
    recommend.set_defaults(handler=_recommend)

    from crossfade.serving import check_model  # light: TensorFlow loads when it runs
    check_model.add_command(subparsers)


# -- serve ---------------------------------------------------------------------------------
# Handlers import TensorFlow-heavy modules when they run, so `crossfade --help` stays fast.

def _models(args: argparse.Namespace):
    from crossfade.serving import model_config
    labels = model_config.parse_labels(args.label)
    if args.model_config_file:
        overrides = {args.model_name: os.path.abspath(args.model_base_path)} \
            if args.model_base_path else None
        models = model_config.read_model_config_file(args.model_config_file, overrides)
        if labels:
            models = [model_config.ModelConfig(
                m.name, m.base_path, m.policy, {**m.labels, **labels})
                if m.name == args.model_name else m for m in models]
        return models
    if not args.model_base_path:
        raise ValueError("give --model-base-path or --model-config-file")
    return [model_config.ModelConfig(args.model_name, os.path.abspath(args.model_base_path),
                                     labels=labels)]


def _serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ start-up noise (CUDA probes)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from crossfade.serving.batching import BatchingOptions, default_batch_threads
    from crossfade.serving.model_server import ModelServer, ServerOptions
    from crossfade.serving.servable import RequestLimits
    try:
        models = _models(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    batching = None
    if not args.no_batching:
        batching = BatchingOptions(max_batch_size=args.max_batch_size,
                                   max_concurrent_batches=args.batch_threads
                                   or default_batch_threads())
    options = ServerOptions(
        host=args.host, grpc_port=args.port, rest_port=args.rest_port or None,
        poll_seconds=args.poll_seconds,
        limits=RequestLimits(max_rows=args.max_rows, max_k=args.max_k),
        max_request_bytes=args.max_request_bytes, batching=batching,
        enable_warmup=not args.no_warmup, max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_micros=args.load_retry_interval_micros)
    server = ModelServer(models, options)

    def _on_sigterm(signum, frame):
        raise KeyboardInterrupt  # stop like Ctrl-C: close ports, finish in-flight requests

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        server.start(wait_seconds=args.wait_seconds)
        for manager in server.registry.managers:
            print(f"Serving model '{manager.config.name}' versions "
                  f"{manager.loaded_versions} from {manager.config.base_path}", flush=True)
        rest = f", REST http://{args.host}:{server.rest_port}" if server.rest_port else ""
        print(f"gRPC {args.host}:{server.grpc_port}{rest} (Ctrl-C to stop)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        server.stop(grace_seconds=0.5)
        signal.signal(signal.SIGTERM, previous)
    return 0


# -- recommend -----------------------------------------------------------------------------

def _track_ids(values: List[str]) -> List[str]:
    """Track ids from repeated and comma-separated flag values."""
    return [track for value in values for track in value.split(",") if track]


def _controls_given(args: argparse.Namespace) -> List[str]:
    """The `recommend` control flags set away from their defaults."""
    flags = (("--exclude", bool(args.exclude)), ("--exclude-listened", args.exclude_listened),
             ("--diversity", args.diversity != 0), ("--explore", args.explore != 0),
             ("--seed", args.seed != 0), ("--new-releases", args.new_releases != 0))
    return [flag for flag, given in flags if given]


def _server(args: argparse.Namespace) -> str:
    if args.server:
        return args.server
    from crossfade.serving.model_server import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT
    return f"127.0.0.1:{DEFAULT_REST_PORT if args.protocol == 'rest' else DEFAULT_GRPC_PORT}"


def _ask(args: argparse.Namespace, call: Callable) -> Tuple[object, int]:
    """(`call(client)`, 0) against `args`' server; or (None, exit code) after printing the
    error: 1 for the server's, 2 for a bad request refused before calling."""
    from crossfade.serving.client import ServingClientError, connect
    try:
        with connect(args.server, args.protocol, model_name=args.model_name,
                     version=args.version, label=args.label,
                     timeout_s=args.timeout) as client:
            return call(client), 0
    except ServingClientError as error:
        print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
        return None, 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None, 2


def _recommend(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.server = _server(args)
    controls = _controls_given(args)
    if args.similar and controls:
        print(f"error: {', '.join(controls)} apply to --user, not --similar", file=sys.stderr)
        return 2
    unsupported = [flag for flag in controls + (["--recent"] if args.recent else [])
                   if flag != "--exclude"]
    if args.blend is not None and unsupported:
        print(f"error: {', '.join(unsupported)} apply to --user, not --blend", file=sys.stderr)
        return 2
    if args.strategy and args.blend is None:
        print("error: --strategy applies to --blend only", file=sys.stderr)
        return 2
    if args.blend is not None:
        return _blend(args)
    started = time.perf_counter()
    if args.pseudonym_key and args.user:
        from crossfade.components.listening_data.pseudonyms import pseudonym_for
        try:
            args.user = pseudonym_for(args.pseudonym_key, args.user)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    def ask(client):
        if args.similar:
            return client.similar_tracks(args.similar, args.k)
        return client.recommend(args.user, _track_ids(args.recent), args.k,
                                platform=args.platform, exclude=_track_ids(args.exclude),
                                diversity=args.diversity, explore=args.explore, seed=args.seed,
                                exclude_listened=args.exclude_listened,
                                released_within_days=args.new_releases)

    result, failed = _ask(args, ask)
    if failed:
        return failed
    elapsed_ms = (time.perf_counter() - started) * 1000
    if args.json:
        print(json.dumps({"model": result.model_name, "version": result.model_version,
                          "signature": result.signature_name, "found": result.found,
                          "tracks": [{"track_id": t.track_id, "title": t.title,
                                      "artist": t.artist, "score": t.score,
                                      "propensity": t.propensity}
                                     for t in result.tracks]}, indent=2))
        return 0 if result.found else 1
    if not result.found:
        print(f"Track '{args.similar}' is not in the catalogue of model "
              f"'{result.model_name}'", file=sys.stderr)
        return 1
    print(render_table(result, args, elapsed_ms))
    from crossfade.serving import signatures
    if args.user and result.signature_name == signatures.SERVING_DEFAULT:
        print(f"note: model '{result.model_name}' predates the '{signatures.RECOMMEND}' "
              "signature: no titles or artists", file=sys.stderr)
    return 0


def _blend(args: argparse.Namespace) -> int:
    members = [user for user in args.blend.split(",") if user]
    started = time.perf_counter()
    try:
        if len(members) < 2:
            raise ValueError(f"--blend needs 2 to 5 user ids, got {args.blend!r}")
        if args.pseudonym_key:
            from crossfade.components.listening_data.pseudonyms import pseudonym_for
            members = [pseudonym_for(args.pseudonym_key, user) for user in members]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    strategy = {"strategy": args.strategy} if args.strategy else {}
    result, failed = _ask(args, lambda client: client.blend(
        members, k=args.k, platform=args.platform, exclude=_track_ids(args.exclude),
        **strategy))
    if failed:
        return failed
    elapsed_ms = (time.perf_counter() - started) * 1000
    if args.json:
        print(json.dumps({"model": result.model_name, "version": result.model_version,
                          "members": list(result.members), "strategy": result.strategy,
                          "tracks": [{"track_id": t.track_id, "title": t.title,
                                      "artist": t.artist, "score": t.score,
                                      "for_member": t.for_member,
                                      "member_scores": list(t.member_scores)}
                                     for t in result.tracks]}, indent=2))
        return 0
    version = result.model_version if result.model_version is not None else \
        (args.label or "latest")
    lines = [f"Blend of {len(result.tracks)} tracks for {', '.join(result.members)} "
             f"({result.strategy})",
             f"model '{result.model_name}' version {version} via {args.protocol} "
             f"{args.server} in {elapsed_ms:.1f} ms", ""]
    lines += _table([("rank", ">", [str(r) for r in range(1, len(result.tracks) + 1)]),
                     ("track id", "<", [t.track_id for t in result.tracks]),
                     ("title", "<", [t.title for t in result.tracks]),
                     ("artist", "<", [t.artist for t in result.tracks]),
                     ("for", "<", [t.for_member for t in result.tracks]),
                     ("score", ">", [f"{t.score:.3f}" for t in result.tracks])])
    print("\n".join(lines))
    return 0


def _table(columns) -> List[str]:
    """Aligned rows of (name, alignment, values) columns, with a header and a rule."""
    widths = [max([len(name)] + [len(value) for value in values])
              for name, _, values in columns]

    def row(cells) -> str:
        return "  ".join(f"{cell:{align}{width}}" for cell, (_, align, _), width
                         in zip(cells, columns, widths, strict=True)).rstrip()

    return ([row([name for name, _, _ in columns]), row(["-" * width for width in widths])]
            + [row(cells) for cells in zip(*(values for _, _, values in columns), strict=True)])


def render_table(result, args: argparse.Namespace, elapsed_ms: float) -> str:
    """A readable table of `result` (a client.Recommendations): rank, track id, title and
    artist, score, and the propensity when `args.explore` > 0. The title and artist columns
    are left out when no track has either (`similar_tracks`, a model without `recommend`)."""
    subject = f"tracks similar to '{args.similar}'" if args.similar else \
        f"recommendations for user '{args.user}'"
    version = result.model_version if result.model_version is not None else \
        (args.label or "latest")
    lines = [f"Top {len(result.tracks)} {subject}",
             f"model '{result.model_name}' version {version} via {args.protocol} "
             f"{args.server} in {elapsed_ms:.1f} ms", ""]
    columns = [("rank", ">", [str(rank) for rank in range(1, len(result.tracks) + 1)]),
               ("track id", "<", [t.track_id for t in result.tracks])]
    if any(t.title or t.artist for t in result.tracks):
        columns += [("title", "<", [t.title for t in result.tracks]),
                    ("artist", "<", [t.artist for t in result.tracks])]
    columns.append(("score", ">", [f"{t.score:.4f}" for t in result.tracks]))
    if getattr(args, "explore", 0) > 0:
        columns.append(("propensity", ">", [f"{t.propensity:.4f}" for t in result.tracks]))
    return "\n".join(lines + _table(columns))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crossfade.serving.commands",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
