"""Each member's stream rate on a Blend, judged by simulated listeners.

Part of `crossfade benchmark blend` on simulator data: the recall figures say whether a blend
holds each member's *held-out* tracks; this says whether each member would *stream* what it
holds. For one seed's trained export and the world's friend groups
(`simulator.friends.friend_groups`: 2 to 5 human listeners with leaning-alike tastes), a
simulated A/B test (`experiment.run`) serves every member of every group:

* arm ``solo``: each member's own ``recommend`` list (no controls), as if alone;
* one arm per blend strategy (`BlendPolicy`): the group's ``blend`` list, to every member.

Each arm has its own `ListeningEnvironment` over the same world and seed (common random
numbers), for `DAYS` days from the data's next day, ``k`` tracks a day; once with the
simulator's long-term effects (satiation, discovery) on and once off. Per arm, over the
members and days:

* ``stream rate``: streams (>= 30 s) per served slot;
* ``ratio``: the arm's stream rate over the solo arm's, on the same members;
* ``worst-member ratio``: per group whose members all streamed something solo, the smallest
  member's blend / solo stream rate; mean over groups (1 for a blend that costs no one);
* ``member spread`` (points): per group, the highest minus the lowest member's stream rate;
  mean over groups (a solo arm has a spread too: members differ in how much they stream).
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np

from crossfade.components.listening_data.simulator.environment import LongTermEffects
from crossfade.components.listening_data.simulator.friends import friend_groups
from crossfade.components.simulation import experiment
from crossfade.components.simulation.blend_policy import BlendPolicy
from crossfade.components.simulation.policies import ModelPolicy, SavedModelBackend
from crossfade.components.simulation.simulated_data import SimulatedData
from crossfade.serving import signatures

SOLO = "solo"
DAYS = 3
EFFECTS = (("effects on", LongTermEffects()), ("effects off", LongTermEffects.off()))
METRICS = ("stream rate", "ratio", "worst-member ratio", "member spread")


def member_rates(logs: Sequence, users: np.ndarray) -> np.ndarray:
    """[len(users)] each listener's streams per served slot over an arm's day `logs`."""
    position = {int(u): i for i, u in enumerate(users)}
    streams, served = np.zeros(len(users)), np.zeros(len(users))
    for log in logs:
        rows = np.array([position[int(u)] for u in log.users])
        np.add.at(streams, rows, (log.responses.streamed & (log.tracks >= 0)).sum(axis=1))
        np.add.at(served, rows, (log.tracks >= 0).sum(axis=1))
    return np.divide(streams, served, out=np.full(len(users), np.nan), where=served > 0)


def arm_metrics(rates: np.ndarray, solo: np.ndarray, groups: Sequence[np.ndarray],
                position: Dict[int, int]) -> Dict[str, float]:
    """`METRICS` of one arm's member `rates` against the solo arm's (`position`: listener ->
    index into both)."""
    # Only members served in both arms (a member is unserved when every list was empty).
    served = np.isfinite(rates) & np.isfinite(solo)
    worst, spread = [], []
    for group in groups:
        rows = [position[int(u)] for u in group if served[position[int(u)]]]
        if len(rows) < 2:
            continue
        spread.append(100 * (rates[rows].max() - rates[rows].min()))
        if (solo[rows] > 0).all():
            worst.append(float(np.min(rates[rows] / solo[rows])))
    return {"stream rate": float(rates[served].mean()),
            "ratio": float(rates[served].mean() / solo[served].mean()),
            "worst-member ratio": float(np.mean(worst)) if worst else float("nan"),
            "member spread": float(np.mean(spread)) if spread else float("nan")}


def measure(data: SimulatedData, backend, groups: Sequence[np.ndarray],
            strategies: Sequence[str], k: int, seed: int,
            log: Callable[[str], None] = print) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{effects: {arm: METRICS}} of the solo arm and each strategy's blend arm."""
    if not groups:
        raise ValueError(f"{data.data_dir}: the world has no friend groups to blend for")
    track_ids = data.world.catalogue.track_id
    members = np.concatenate(groups)
    position = {int(u): i for i, u in enumerate(members)}
    policies = [ModelPolicy(SOLO, backend, {}, track_ids, seed=seed)] + [
        BlendPolicy(backend, groups, strategy, track_ids) for strategy in strategies]
    result: Dict[str, Dict[str, Dict[str, float]]] = {}
    for label, effects in EFFECTS:
        settings = experiment.SimulationSettings(days=DAYS, k=k, seed=seed, effects=effects)
        arms = experiment.run(data, policies, settings, progress=lambda _: None,
                              users=members)
        rates = {arm.policy.name: member_rates(arm.logs, members) for arm in arms}
        result[label] = {name: arm_metrics(r, rates[SOLO], groups, position)
                         for name, r in rates.items()}
        log(f"  simulated ({label}, {len(groups)} groups, {len(members)} members): " + "; ".join(
            f"{name} {m['stream rate']:.3f} (worst {m['worst-member ratio']:.2f})"
            for name, m in result[label].items()))
    return result


def run_seed(data_dir: str, export_dir: str, k: int, seed: int,
             log: Callable[[str], None] = print) -> Dict[str, Dict[str, Dict[str, float]]]:
    """`measure` for the export at `export_dir`, trained on the simulator folder `data_dir`,
    over every friend group of its world."""
    data = SimulatedData.load(data_dir)
    return measure(data, SavedModelBackend(export_dir), friend_groups(data.world),
                   sorted(signatures.BLEND_STRATEGIES), k, seed, log)
