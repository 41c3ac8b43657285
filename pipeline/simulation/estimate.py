"""Off-policy evaluation (`crossfade simulate --estimate`): other policies' stream rates from
one exploring policy's logs alone, set beside what the simulator says on-policy.

The logging policy (``--logging``, default ``model:explore=0.2``) serves every session with
per-slot epsilon-greedy exploration and records, per slot, the track shown, its propensity
``mu_k = mu(a_k | x, a_<k)`` from the ``recommend`` signature and the reward ``r_k`` (1 if
streamed). Each target policy is then asked, on the very requests the logger got, what it
would have shown; its probability of the logged track in that slot is ``pi_k``: ``[t_k ==
a_k]`` for a deterministic target (a model without exploration, the chart) and ``1 / (C - k)``
for the random policy (any track not shown earlier, uniformly; ``C`` released tracks).

Estimator: per slot, self-normalised per position: ``V = (1/K) sum_k SNIPS_k`` with
``SNIPS_k = sum_i w_ik r_ik / sum_i w_ik`` over the logged lists' slot ``k`` and ``w = pi /
mu``. Normalising each position apart matters: a target agrees with the logger's greedy pick
far more often at the first slots (where every ranking starts from the most relevant track,
and the first play is skipped less) than at the last, so pooling all slots into one SNIPS
would weigh the first slots too much. A position where no logged slot matches has no estimate
(the target is not supported there: its tracks are ones the logger never explores) and the
estimate is then NaN, with those positions listed. Pooled SNIPS and IPS are reported beside
it.

Weights are clipped at `CLIP` (10): a logged slot where the logger explored and happened to
show the target's track has ``mu = explore / (pool - 1)``, a weight near 1,000 with the
default logger, and a handful of those would otherwise decide a position's estimate alone
(its effective sample size drops to a few). Clipping trades that variance for a bias towards
the slots where target and logger agree. 10 was chosen from {5, 10, 20, 50, 100} on the
`small` preset's benchmark; the README shows the estimates at every one. Per-list weights
``prod_k pi_k / mu_k`` are exact but vanish unless the target's whole list was logged, which
for K = 10 and any target that is not the logger's greedy list essentially never happens
(their effective sample size is reported to show it). The per-slot form assumes a slot's
reward depends on what it shows and its position, not on the earlier slots; here it does a
little (a listener who skipped may leave, and satiation counts the list's earlier streams), and
a target's track that the logger showed earlier in the list cannot be matched later (see
`off_policy`). SNIPS is the headline figure: self-normalised, it is far less noisy than IPS
when a few explored matches carry weights of ``1 / mu`` in the thousands.

The on-policy value of each target is measured by serving it to the same listeners from the
same state (`experiment`), so estimate and truth differ only by the estimator.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from crossfade.components.simulation import experiment, metrics, off_policy, policies
from crossfade.components.simulation.simulated_data import SimulatedData

DEFAULT_LOGGING = "model:explore=0.2"
DEFAULT_TARGETS = ("model", "model:diversity=0.3", "chart")
#: Importance weights above this are cut to it (the estimator's one setting; see below).
CLIP = 10.0
ESTIMATOR = (f"per-slot SNIPS normalised per position, weights clipped at {CLIP:g} (unclipped, "
             "pooled and IPS beside it)")


def target_probabilities(policy: policies.Policy, requests: policies.Requests,
                         logged: np.ndarray) -> np.ndarray:
    """``pi_k`` of the logged [n, K] tracks under ``policy`` on ``requests``."""
    if isinstance(policy, policies.RandomPolicy):
        released = int((policy.release_day <= requests.day).sum())
        k = np.arange(logged.shape[1], dtype=np.float64)
        return np.broadcast_to(1.0 / (released - k), logged.shape) * (logged >= 0)
    _check_target(policy)
    shown = policy.recommend(requests).tracks
    return ((shown == logged) & (logged >= 0)).astype(np.float64)


def _check_target(policy: policies.Policy) -> None:
    if isinstance(policy, policies.ModelPolicy) and policy.controls.get("explore", 0.0) > 0:
        raise policies.PolicyError(f"target {policy.name}: an exploring target's slot "
                                   "probabilities given the logged slots are unknown; use "
                                   "explore=0")


def estimate(data: SimulatedData, logging: policies.Policy,
             targets: Sequence[policies.Policy], settings: experiment.SimulationSettings
             ) -> tuple[dict, list[experiment.Arm]]:
    """The report's ``off_policy`` entry (each target's estimates and on-policy value), and
    the arms of the logger and of the targets served on-policy."""
    for target in targets:  # before the first simulated day
        _check_target(target)
    users = experiment.listeners(data, settings)
    logger = experiment.new_arm(data, logging, settings)
    samples: dict[str, list] = {t.name: [] for t in targets}
    for d in range(settings.days):
        log = experiment.run_day(data, logger, users, data.num_days + d, settings.k)
        print(f"  day {d + 1}/{settings.days}  logged by {logging.name}", file=sys.stderr,
              flush=True)
        for target in targets:
            pi = target_probabilities(target, log.requests, log.tracks)
            samples[target.name].append((log.responses.streamed.astype(np.float64), pi,
                                         log.propensities, log.tracks >= 0))
    on_policy = experiment.run(data, targets, settings)  # the truth, for comparison
    rows = []
    for target, arm in zip(targets, on_policy, strict=True):
        r, pi, mu, filled = (np.concatenate(parts) for parts in zip(*samples[target.name],
                                                                       strict=True))
        rows.append({"policy": target.name,
                     "on_policy": metrics.summarise(data.world, arm.logs)["stream_rate"],
                     **_estimates(r, pi, mu, filled)})
    entry = {"logging_policy": logging.name, "estimator": ESTIMATOR,
             "logged_stream_rate": metrics.summarise(data.world, logger.logs)["stream_rate"],
             "targets": rows}
    return entry, [logger, *on_policy]


def _per_position_snips(r: np.ndarray, pi: np.ndarray, mu: np.ndarray, filled: np.ndarray,
                        clip: float = np.inf) -> tuple[float, float, list[int]]:
    """(mean over positions of SNIPS_k with weights min(pi / mu, clip), the smallest
    position's Kish ESS, the positions without a matched slot)."""
    values, sizes = [], []
    for k in range(r.shape[1]):
        f = filled[:, k]
        w = np.minimum(off_policy.importance_weights(pi[f, k], mu[f, k]), clip)
        total, squares = w.sum(), np.square(w).sum()
        values.append((w * r[f, k]).sum() / total if total else np.nan)
        sizes.append(total * total / squares if squares else 0.0)
    values = np.array(values)
    unsupported = [k for k, v in enumerate(values) if not np.isfinite(v)]
    value = float(values.mean()) if not unsupported else float("nan")
    return value, float(min(sizes)), unsupported


def _estimates(r: np.ndarray, pi: np.ndarray, mu: np.ndarray, filled: np.ndarray) -> dict:
    """Per-slot estimates over [n, K] logs: the headline clipped SNIPS per position, and the
    unclipped, pooled and IPS forms beside it."""
    ips = off_policy.ips(r[filled], pi[filled], mu[filled])
    pooled = off_policy.snips(r[filled], pi[filled], mu[filled])
    clipped, clipped_ess, unsupported = _per_position_snips(r, pi, mu, filled, CLIP)
    unclipped, unclipped_ess, _ = _per_position_snips(r, pi, mu, filled)
    return {
        "snips": clipped, "effective_sample_size": clipped_ess,
        "snips_unclipped": unclipped, "unclipped_effective_sample_size": unclipped_ess,
        "snips_pooled": pooled.value, "ips": ips.value,
        "matched": pooled.matched, "num_samples": pooled.num_samples,
        # NaN estimates when some position has no matched slot: not supported there.
        "unsupported_positions": unsupported,
        "per_list_effective_sample_size": _kish(_list_weights(pi, mu, filled)),
    }


def _list_weights(pi: np.ndarray, mu: np.ndarray, filled: np.ndarray) -> np.ndarray:
    ratio = np.where(filled, pi / np.where(filled, mu, 1.0), 1.0)
    return ratio.prod(axis=1)


def _kish(weights: np.ndarray) -> float:
    squares = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / squares) if squares else 0.0
