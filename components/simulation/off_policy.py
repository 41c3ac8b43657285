"""Off-policy estimates of a target policy's stream rate from logs with per-slot propensities.

Setting. A logging policy mu served ranked lists of K slots with per-slot epsilon-greedy
exploration. Each logged slot k of a list carries the track shown a_k, its logging propensity
p_k = mu(a_k | x, a_<k) > 0 (conditional on the context x and the earlier slots a_<k) and a
reward r_k (1 if streamed for at least 30 s, else 0). A target policy pi is scored by the
probability it would have shown the logged track in that slot, pi_k = pi(a_k | x, a_<k); for a
deterministic target with list t_1..t_K, pi_k = 1 if t_k == a_k, else 0. The quantity estimated
is the target's stream rate: its expected reward per slot.

Estimators, over n logged samples with importance weights w and rewards r:

* IPS (`ips`):      V = (1/n) sum_i w_i r_i. Unbiased when the weights are the true ratios and
  the target's support is covered (mu > 0 wherever pi > 0), but its variance grows with the
  weights: a rare explored match carries weight 1/p_k, e.g. N / epsilon for a uniform draw
  over N tracks.
* SNIPS (`snips`):  V = sum_i w_i r_i / sum_i w_i. The self-normalised ratio trades a small
  bias (O(1/n), vanishing as the log grows) for much lower variance: it is always within the
  range of the rewards and is unchanged by rescaling the weights. With no matched sample
  (sum w = 0) there is nothing to normalise by and the value is NaN.
* Kish effective sample size, reported with both: ESS = (sum w)^2 / sum w^2 (0.0 when every
  weight is 0). It is n for equal weights and 1 when one sample holds all the weight: how many
  logged samples the estimate is really worth. A value of a few tens is noise, whatever n is.

Two forms of weight, and what each estimates:

* Per slot (`importance_weights`): one sample per logged slot with w_k = pi_k / p_k. Then
  E[w_k r_k] = E_{a_<k ~ mu} sum_{a: mu(a | x, a_<k) > 0} pi(a | x, a_<k) E[r | x, a_<k, a]:
  the target's choice at slot k after the logger's earlier slots, where the logger could make
  it. That equals the target's own slot-k reward
  under two assumptions. (1) A slot's reward depends only on the context, the position and the
  track it shows, not on which tracks the earlier slots showed (no satiation or sequence
  effect), so the logger's prefix may stand in for the target's. (2) The target's track is
  still available to the logger at slot k: with conditional propensities a track already shown
  earlier has p = 0, which breaks support. For a deterministic target the per-slot IPS value is
  then, writing r(t_k) for the expected reward of the target's slot-k track and
  A_k = P_mu(t_k not in a_<k) for its availability,

      E[IPS] = (1/K) sum_k A_k r(t_k),    and SNIPS -> sum_k A_k r(t_k) / sum_k A_k,

  instead of (1/K) sum_k r(t_k). IPS is biased low whenever the logger often took the target's
  slot-k track earlier (e.g. a target that ranks the logger's favourites in a different order);
  SNIPS is a mean over slots that down-weights the rarely available ones, biased only insofar
  as their rewards differ from the others. With independent slots (no conditioning, repeats
  allowed) A_k = 1 and both are consistent.
* Per list (`per_list_weights`): one sample per logged list with w = prod_k pi_k / p_k. By the
  chain rule over slots this is pi(list) / mu(list), so E[w R(list)] = E_pi[R] for any
  list-level reward R (e.g. the list's mean slot reward), with no assumption about how slots
  interact. The price is variance: for a deterministic target the weight is nonzero only when
  the logger served the target's whole list, which needs an exploratory draw at every slot
  where the two disagree, so the weights are mostly 0 and the rest are huge. The ESS of
  per-list weights is usually tiny unless the target's list is likely under the logger. To
  estimate with them, pass the list rewards and the list probabilities prod_k pi_k and
  prod_k p_k to `ips` or `snips`; `per_list_weights` gives the ratio for diagnostics.

Inputs may be any shape (they are flattened; `per_list_weights` needs [lists, k]) and are
computed in float64. Rewards must be finite; they need not be 0/1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """An off-policy estimate of the target's mean reward per sample, with its diagnostics."""
    estimator: str  # "ips" or "snips"
    value: float  # estimated mean reward per slot (the stream rate); NaN when undefined
    effective_sample_size: float  # Kish: (sum w)^2 / sum w^2; 0.0 when all weights are 0
    num_samples: int  # logged samples (slots, or lists for per-list weights) used
    matched: int  # samples with nonzero weight


def _first_index(mask: np.ndarray) -> tuple:
    """Index tuple of the first True entry of a non-empty mask, for error messages."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def importance_weights(target_probs: np.ndarray, logging_probs: np.ndarray) -> np.ndarray:
    """Importance weights w = pi / mu, elementwise.

    Args:
      target_probs: any shape, finite pi in [0, 1]: the target's probability of the logged
        choice.
      logging_probs: same shape, finite mu in (0, 1]: the logged propensity of that choice.

    Returns:
      float64 array of the inputs' shape, w >= 0.

    Raises:
      ValueError: on different shapes or a probability out of range; the message names the
        argument and the index of its first bad entry.
    """
    target = np.asarray(target_probs, dtype=np.float64)
    logging = np.asarray(logging_probs, dtype=np.float64)
    if target.shape != logging.shape:
        raise ValueError(f"target_probs has shape {target.shape}, "
                         f"logging_probs {logging.shape}")
    # Written as "not in range" so NaN, which fails every comparison, is caught too.
    bad = ~((logging > 0.0) & (logging <= 1.0))
    if bad.any():
        at = _first_index(bad)
        raise ValueError(f"logging_probs must be in (0, 1], got {logging[at]} at index {at}")
    bad = ~((target >= 0.0) & (target <= 1.0))
    if bad.any():
        at = _first_index(bad)
        raise ValueError(f"target_probs must be in [0, 1], got {target[at]} at index {at}")
    return target / logging


def _flat_inputs(rewards, target_probs, logging_probs) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (rewards, weights), checked."""
    weights = importance_weights(target_probs, logging_probs)
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != weights.shape:
        raise ValueError(f"rewards has shape {rewards.shape}, target_probs {weights.shape}")
    if not np.isfinite(rewards).all():
        raise ValueError(f"rewards must be finite, got {rewards[~np.isfinite(rewards)][0]}")
    return rewards.ravel(), weights.ravel()


def _estimate(name: str, value: float, weights: np.ndarray) -> Estimate:
    total, squares = weights.sum(), np.square(weights).sum()
    return Estimate(estimator=name, value=float(value),
                    effective_sample_size=float(total * total / squares) if squares else 0.0,
                    num_samples=int(weights.size), matched=int(np.count_nonzero(weights)))


def ips(rewards: np.ndarray, target_probs: np.ndarray, logging_probs: np.ndarray) -> Estimate:
    """Inverse propensity scoring: mean(w * r) over the logged samples.

    Args:
      rewards: any shape, finite reward of each logged sample.
      target_probs, logging_probs: same shape; see `importance_weights`.

    Returns:
      `Estimate` named "ips"; value NaN when there are no samples.
    """
    rewards, weights = _flat_inputs(rewards, target_probs, logging_probs)
    value = np.mean(weights * rewards) if weights.size else np.nan
    return _estimate("ips", value, weights)


def snips(rewards: np.ndarray, target_probs: np.ndarray, logging_probs: np.ndarray) -> Estimate:
    """Self-normalised IPS: sum(w * r) / sum(w).

    Args:
      rewards: any shape, finite reward of each logged sample.
      target_probs, logging_probs: same shape; see `importance_weights`.

    Returns:
      `Estimate` named "snips"; value NaN when sum(w) == 0 (no sample the target would show).
    """
    rewards, weights = _flat_inputs(rewards, target_probs, logging_probs)
    total = weights.sum()
    value = (weights @ rewards) / total if total > 0 else np.nan
    return _estimate("snips", value, weights)


def per_list_weights(target_probs: np.ndarray, logging_probs: np.ndarray) -> np.ndarray:
    """Per-list importance weights prod_k pi_k / mu_k = pi(list) / mu(list).

    Args:
      target_probs: [lists, k] pi_k per logged slot, in [0, 1].
      logging_probs: [lists, k] conditional logging propensities mu_k, in (0, 1].

    Returns:
      [lists] float64 weights; 0 for every list with a slot the target would not have shown.
      Each factor is at most 1 / mu_k, so the product overflows float64 (~1.8e308) only for
      very long lists of rare draws, e.g. 52 slots each at mu_k = 1e-6.
    """
    target = np.asarray(target_probs)
    if target.ndim != 2:
        raise ValueError(f"target_probs must be [lists, k], got shape {target.shape}")
    return importance_weights(target, logging_probs).prod(axis=1)
