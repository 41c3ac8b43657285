"""`crossfade simulate`: policies judged by simulated listeners, written up as a report.

    crossfade simulate [--data DIR] [--output DIR] [--policy SPEC ...] [--server HOST:PORT]
                       [--users N] [--days D] [-k K] [--seed S] [--long-term on|off|both]
                       [--rounds R [--set NAME=VALUE ...] | --estimate [--logging SPEC]]
                       [--out DIR]

Three experiments: an A/B test of the policies (default), the closed loop over R rounds
(`closed_loop`), or off-policy estimates of the policies from one exploring policy's logs
(`estimate`).
The data must be simulator-made (`simulated_data`); ``model`` is the latest version pushed
under ``<output>/serving/crossfade`` (or, with ``--server``, whatever that server serves).
Every setting is checked, and every policy loaded, before the first simulated day, so a bad
spec costs nothing and writes nothing; the report is written only at the end.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Mapping, Sequence

from crossfade.components.listening_data.simulator.environment import LongTermEffects
from crossfade.components.simulation import experiment, metrics, policies
from crossfade.components.simulation.simulated_data import SimulatedData
from crossfade.pipeline.simulation import closed_loop, estimate, report

DEFAULT_POLICIES = ("model", "model:diversity=0.3", "model:explore=0.1", "chart", "random")
DEFAULT_LOOP_POLICIES = ("model", "model:diversity=0.3", "model:explore=0.1")
EFFECTS = {"on": (("on", LongTermEffects()),), "off": (("off", LongTermEffects.off()),),
           "both": (("on", LongTermEffects()), ("off", LongTermEffects.off()))}


def build_policies(specs: Sequence[policies.PolicySpec], data: SimulatedData,
                   serving_base_path: str, server: "str | None",
                   seed: int) -> list[policies.Policy]:
    """One policy per spec; exports are loaded once however many specs use them."""
    backends: dict[str, object] = {}
    built = []
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise policies.PolicyError(f"policies named twice: {sorted(names)}")
    for spec in specs:
        if spec.source == policies.CHART:
            built.append(policies.ChartPolicy(data.chart))
        elif spec.source == policies.RANDOM:
            built.append(policies.RandomPolicy(data.world.catalogue.release_day, seed))
        else:
            key = server if (spec.source == policies.MODEL and server) else spec.source
            if key not in backends:
                backends[key] = _backend(spec.source, serving_base_path, server)
            built.append(policies.ModelPolicy(spec.name, backends[key], spec.controls,
                                              data.world.catalogue.track_id, seed))
    return built


def _backend(source: str, serving_base_path: str, server: "str | None"):
    if source == policies.MODEL and server:
        return policies.ServerBackend(server)
    if source == policies.MODEL:
        if not os.path.isdir(serving_base_path):
            raise policies.PolicyError(f"no pushed model under {serving_base_path}: run "
                                       "`crossfade run` first, or give an export's path")
        return policies.SavedModelBackend(policies.latest_export(serving_base_path))
    return policies.SavedModelBackend(policies.latest_export(source))


def result_of(data: SimulatedData, arms_by_effects: dict[str, list[experiment.Arm]],
              settings: experiment.SimulationSettings, wall_seconds: float) -> dict:
    """The report's ``result`` dict (see `report`)."""
    both = len(arms_by_effects) > 1
    table = {}
    for label, arms in arms_by_effects.items():
        for arm in arms:
            name = f"{arm.policy.name} [effects {label}]" if both else arm.policy.name
            table[name] = {
                "source": arm.policy.source,
                "summary": metrics.summarise(data.world, arm.logs),
                "per_day": _per_day(data, arm),
                "serve_seconds": arm.serve_seconds,
                "respond_seconds": arm.respond_seconds,
            }
    effects = {label: dataclasses.asdict(arms[0].env.effects)
               for label, arms in arms_by_effects.items() if arms}
    return {
        "settings": {
            "data_dir": data.data_dir, "users": len(experiment.listeners(data, settings)),
            "days": settings.days, "k": settings.k, "seed": settings.seed,
            "first_day": data.num_days,
            "long_term_effects": effects if both else next(iter(effects.values())),
            "listening": dataclasses.asdict(settings.listening), "rounds": 0,
        },
        "metrics": metrics.metric_table(),
        "policies": table,
        "wall_seconds": wall_seconds,
    }


def _per_day(data: SimulatedData, arm: experiment.Arm) -> dict[str, list[float]]:
    days = [metrics.summarise(data.world, [log]) for log in arm.logs]
    return {name: [d[name] for d in days] for name, *_ in metrics.METRICS}


def simulate(data_dir: str, serving_base_path: str, specs: Sequence[str], out_dir: str,
             settings: experiment.SimulationSettings, long_term: str = "on",
             server: "str | None" = None, rounds: "int | None" = None,
             estimate_from: "str | None" = None,
             overrides: "Mapping[str, object] | None" = None) -> dict:
    """Runs the A/B test (or the closed loop with ``rounds``, or off-policy estimates from
    ``estimate_from``'s logs) and writes the report under ``out_dir``; returns the result."""
    started = time.perf_counter()
    if long_term not in EFFECTS:
        raise ValueError(f"--long-term must be one of {sorted(EFFECTS)}, not {long_term!r}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"--rounds must be at least 1, not {rounds}")
    if rounds and estimate_from:
        raise ValueError("--rounds and --estimate are separate experiments: give one")
    if estimate_from and long_term == "both":
        raise ValueError("--estimate compares with one setting of --long-term: on or off")
    parsed = [policies.parse_spec(s) for s in specs]
    logging_spec = policies.parse_spec(estimate_from) if estimate_from else None
    if logging_spec and logging_spec.name in {spec.name for spec in parsed}:
        raise policies.PolicyError(f"--logging {logging_spec.name} is also a --policy: the "
                                   "report keeps one row per name; drop it from --policy")
    data = SimulatedData.load(data_dir)
    if rounds:
        result = _closed_loop(data, parsed, out_dir, settings, long_term, rounds, overrides)
    else:
        built = build_policies(parsed, data, serving_base_path, server, settings.seed)
        arms, off = {}, None
        for label, effects in EFFECTS[long_term]:
            run_settings = dataclasses.replace(settings, effects=effects)
            print(f"Simulating {len(built)} policies, long-term effects {label}", flush=True)
            if estimate_from:
                logger = build_policies([logging_spec], data,
                                        serving_base_path, server, settings.seed)[0]
                off, arms[label] = estimate.estimate(data, logger, built, run_settings)
            else:
                arms[label] = experiment.run(data, built, run_settings)
        result = result_of(data, arms, settings, time.perf_counter() - started)
        if off is not None:
            result["off_policy"] = off
    result["wall_seconds"] = time.perf_counter() - started
    report.write_report(result, out_dir)
    return result


def _closed_loop(data: SimulatedData, specs: Sequence[policies.PolicySpec], out_dir: str,
                 settings: experiment.SimulationSettings, long_term: str, rounds: int,
                 overrides: "Mapping[str, object] | None") -> dict:
    started = time.perf_counter()
    loop = closed_loop.LoopSettings(rounds, dict(overrides or {}))
    entries, lineages = closed_loop.run(data.data_dir, out_dir, specs, dict(EFFECTS[long_term]),
                                        settings, loop)
    arms = {label: [ln.arm for ln in lineages if ln.effects_label == label]
            for label, _ in EFFECTS[long_term]}
    result = result_of(data, arms, settings, time.perf_counter() - started)
    result["settings"]["rounds"] = rounds
    result["rounds"] = entries
    return result


def default_specs(rounds: "int | None", estimate_from: "str | None") -> tuple[str, ...]:
    if rounds:
        return DEFAULT_LOOP_POLICIES
    return estimate.DEFAULT_TARGETS if estimate_from else DEFAULT_POLICIES
