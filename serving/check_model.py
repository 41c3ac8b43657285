"""`crossfade check-model PATH [--json]`: will TF Serving's runtime load and warm this version?

    crossfade check-model outputs/serving/crossfade          # the newest version
    crossfade check-model outputs/serving/crossfade/1700000000 --json

PATH is a version folder (holding saved_model.pb) or a model base path (its newest version, as
`model_base_path.served_versions` lists them, is checked). The version is loaded by TensorFlow's
C++ runtime with TF Serving's `LoadSavedModel` call and every warmup record is replayed
(`crossfade.serving.runtime_check`; the checker is compiled with g++ on first use). Prints
whether it loads, the signatures, warmup results, load time and resident memory.

Exit status: 0 when it loads and every warmup record answers, 1 otherwise (or when the check
cannot run), 2 when PATH is not a version folder or a base path with versions.
"""
import argparse
import json
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_BAD_PATH = 0, 1, 2


def add_command(subparsers) -> None:
    """Registers `check-model` on an argparse subparsers object."""
    check = subparsers.add_parser(
        "check-model", help="load a SavedModel in TF Serving's C++ runtime and replay its "
                            "warmup requests (before a rollout)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("path", help="a version folder, or a model base path (newest version)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=run)


def resolve_version(path: str) -> str:
    """The version folder to check: `path` itself if it holds saved_model.pb, else the newest
    version under `path`. ValueError naming `path` if neither."""
    from crossfade.serving import model_base_path
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = model_base_path.served_versions(path)
    if not versions:
        raise ValueError(f"{path}: neither a SavedModel version folder (no saved_model.pb) "
                         "nor a model base path with numbered versions")
    newest = os.path.join(path, versions[-1])
    if not os.path.isfile(os.path.join(newest, "saved_model.pb")):
        raise ValueError(f"{newest}: newest version has no saved_model.pb")
    return newest


def _shape(shape) -> str:
    return "?" if shape is None else "[" + ", ".join(
        "?" if size < 0 else str(size) for size in shape) + "]"


def _tensors(tensors) -> str:
    return ", ".join(f"{t.key} {t.dtype[3:].lower()}{_shape(t.shape)}" for t in tensors)


def render(report) -> str:
    """Readable lines of a `runtime_check.CheckReport`."""
    lines = [f"Model version {report.export_dir}",
             f"loads in TF Serving's runtime: {'yes' if report.loads else 'no'}",
             f"load time: {report.load_seconds:.2f} s",
             f"resident memory: {report.vm_rss_kb / 1024:.0f} MiB "
             f"(peak {report.vm_hwm_kb / 1024:.0f} MiB, "
             f"{report.vm_rss_before_load_kb / 1024:.0f} MiB before loading)",
             f"warmup: {len(report.warmup)} records replayed, "
             f"{len(report.warmup_failures)} failed", "signatures:"]
    for signature in report.signatures:
        if signature.name.startswith("__"):  # __saved_model_init_op: not callable
            continue
        lines.append(f"  {signature.name}: ({_tensors(signature.inputs)}) -> "
                     f"({_tensors(signature.outputs)})")
    problems = report.problems()
    if problems:
        lines.append("problems:")
        lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The `check-model` handler; returns the exit status (module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from crossfade.serving import runtime_check
    try:
        version = resolve_version(args.path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_PATH
    try:
        report = runtime_check.run_check(version)
    except (runtime_check.RuntimeCheckError, ValueError, OSError) as error:
        print(f"error: cannot check {version}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(report.summary(), indent=2) if args.json else render(report))
    return EXIT_OK if report.loads else EXIT_FAILED
