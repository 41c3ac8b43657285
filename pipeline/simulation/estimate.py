"""Off-policy evaluation (`crossfade simulate --estimate`): other policies' stream rates from
one exploring policy's logs alone, set beside what the simulator says on-policy.

The logging policy (``--logging``, default ``model:explore=0.2``) serves every session with
per-slot epsilon-greedy exploration and records, per slot, the track shown, its propensity
``mu_k = mu(a_k | x, a_<k)`` from the ``recommend`` signature and the reward ``r_k`` (1 if
streamed). Each target policy is then asked, on the very requests the logger got, what it
would have shown; its probability of the logged track in that slot is ``pi_k``: ``[t_k ==
a_k]`` for a deterministic target (a model without exploration, the chart) and ``1 / (C - k)``
for the random policy (any track not shown earlier, uniformly; ``C`` released tracks).

Estimator: per slot (`off_policy.snips` over slots, IPS beside it). Per-list weights
``prod_k pi_k / mu_k`` are exact but vanish unless the target's whole list was logged, which
for K = 10 and any target that is not the logger's greedy list essentially never happens
(their effective sample size is reported to show it). The per-slot form assumes a slot's
reward depends on what it shows and its position, not on the earlier slots; here it does a
little (a listener who skipped may leave, and satiation counts the list's earlier streams), and
a target's track that the logger showed earlier in the list cannot be matched later (see
`off_policy`). SNIPS is the headline figure: self-normalised, it is far less noisy than IPS
when a few explored matches carry weights of ``1 / mu`` in the thousands.

The on-policy value of each target is measured by serving it to the same listeners from the
same state (`ab_test`), so estimate and truth differ only by the estimator.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from crossfade.components.simulation import ab_test, metrics, off_policy, policies
from crossfade.components.simulation.simulated_data import SimulatedData

DEFAULT_LOGGING = "model:explore=0.2"
DEFAULT_TARGETS = ("model", "model:diversity=0.3", "chart")
ESTIMATOR = "per-slot SNIPS (IPS beside it)"


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
             targets: Sequence[policies.Policy], settings: ab_test.SimulationSettings
             ) -> tuple[dict, list[ab_test.Arm]]:
    """The report's ``off_policy`` entry (each target's estimates and on-policy value), and
    the arms of the logger and of the targets served on-policy."""
    for target in targets:  # before the first simulated day
        _check_target(target)
    users = ab_test.listeners(data, settings)
    logger = ab_test.new_arm(data, logging, settings)
    samples: dict[str, list] = {t.name: [] for t in targets}
    for d in range(settings.days):
        day = data.num_days + d
        log = ab_test.run_day(data, logger, users, day, settings.k)
        filled = log.tracks >= 0
        for target in targets:
            pi = target_probabilities(target, log.requests, log.tracks)
            samples[target.name].append((log.responses.streamed[filled].astype(np.float64),
                                         pi[filled], log.propensities[filled],
                                         _list_weights(pi, log.propensities, filled)))
    on_policy = ab_test.run(data, targets, settings, progress=lambda text: None)
    rows = []
    for target, arm in zip(targets, on_policy, strict=True):
        r, pi, mu, lists = (np.concatenate(parts) for parts in zip(*samples[target.name],
                                                                      strict=True))
        ips, snips = off_policy.ips(r, pi, mu), off_policy.snips(r, pi, mu)
        list_ess = _kish(lists)
        rows.append({
            "policy": target.name,
            "on_policy": metrics.summarise(data.world, arm.logs)["stream_rate"],
            "ips": ips.value, "snips": snips.value,
            "effective_sample_size": snips.effective_sample_size,
            "matched": snips.matched, "num_samples": snips.num_samples,
            "per_list_effective_sample_size": list_ess,
        })
    entry = {"logging_policy": logging.name, "estimator": ESTIMATOR,
             "logged_stream_rate": metrics.summarise(data.world, logger.logs)["stream_rate"],
             "targets": rows}
    return entry, [logger, *on_policy]


def _list_weights(pi: np.ndarray, mu: np.ndarray, filled: np.ndarray) -> np.ndarray:
    ratio = np.where(filled, pi / np.where(filled, mu, 1.0), 1.0)
    return ratio.prod(axis=1)


def _kish(weights: np.ndarray) -> float:
    squares = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / squares) if squares else 0.0
