"""Off-policy estimators on planted logs with hand-computed answers, and one Monte-Carlo check."""
import math

import numpy as np
import pytest

from crossfade.components.simulation import off_policy


def test_importance_weights_are_the_ratio_and_keep_the_shape():
    w = off_policy.importance_weights([[1.0, 0.0], [0.5, 1.0]], [[0.25, 0.5], [0.5, 1.0]])
    assert w.dtype == np.float64
    np.testing.assert_array_equal(w, [[4.0, 0.0], [1.0, 1.0]])


# w = (2, 4, 0, 2), w * r = (2, 0, 0, 2).
REWARDS = np.array([1.0, 0.0, 1.0, 1.0])
TARGET = np.array([1.0, 1.0, 0.0, 0.5])
LOGGING = np.array([0.5, 0.25, 0.5, 0.25])


def test_ips_and_snips_planted():
    ips = off_policy.ips(REWARDS, TARGET, LOGGING)
    snips = off_policy.snips(REWARDS, TARGET, LOGGING)
    # IPS = 4 / 4 samples; SNIPS = 4 / sum w = 4 / 8; ESS = 8^2 / (4 + 16 + 0 + 4) = 8 / 3.
    assert ips == off_policy.Estimate("ips", 1.0, pytest.approx(8 / 3), 4, 3)
    assert snips == off_policy.Estimate("snips", 0.5, pytest.approx(8 / 3), 4, 3)


def test_inputs_of_any_shape_are_flattened():
    flat = off_policy.snips(REWARDS, TARGET, LOGGING)
    square = off_policy.snips(REWARDS.reshape(2, 2), TARGET.reshape(2, 2),
                              LOGGING.reshape(2, 2))
    assert square == flat


def test_effective_sample_size_extremes():
    n = 10
    equal = off_policy.ips(np.ones(n), np.full(n, 0.3), np.full(n, 0.6))
    assert equal.effective_sample_size == pytest.approx(n)
    one = off_policy.ips(np.ones(n), np.eye(1, n).ravel(), np.full(n, 0.5))
    assert (one.effective_sample_size, one.matched) == (1.0, 1)


def test_no_match_and_no_samples():
    none = off_policy.snips(np.ones(3), np.zeros(3), np.full(3, 0.5))
    assert math.isnan(none.value)
    assert (none.effective_sample_size, none.num_samples, none.matched) == (0.0, 3, 0)
    assert off_policy.ips(np.ones(3), np.zeros(3), np.full(3, 0.5)).value == 0.0
    empty = off_policy.ips([], [], [])
    assert math.isnan(empty.value)
    assert (empty.effective_sample_size, empty.num_samples, empty.matched) == (0.0, 0, 0)


# A no-repeat logger over tracks {0, 1, 2} and K = 2 slots: slot 1 shows track 0 with
# probability 0.8 and each other track with 0.1; slot 2 shows either remaining track with 0.5.
# The log below holds each list in proportion to its probability (0.4, 0.4, 0.05 x 4), so an
# estimator's value on it is its expectation. Expected rewards per track: 0.6, 0.3, 0.1.
# The target serves [1, 0]; its true stream rate is (0.3 + 0.6) / 2 = 0.45.
LISTS = np.array([[0, 1]] * 8 + [[0, 2]] * 8 + [[1, 0], [1, 2], [2, 0], [2, 1]])
SLOT_REWARD = np.array([0.6, 0.3, 0.1])[LISTS]
PROPENSITY = np.column_stack([np.where(LISTS[:, 0] == 0, 0.8, 0.1), np.full(len(LISTS), 0.5)])
SHOWN_BY_TARGET = (LISTS == [1, 0]).astype(float)


def test_per_slot_estimates_lose_the_slots_the_logger_took_earlier():
    # Track 0 is available at slot 2 only when slot 1 did not show it: A = (1, 0.2).
    # IPS -> (1 * 0.3 + 0.2 * 0.6) / 2 = 0.21; SNIPS -> (0.3 + 0.2 * 0.6) / (1 + 0.2) = 0.35.
    ips = off_policy.ips(SLOT_REWARD, SHOWN_BY_TARGET, PROPENSITY)
    snips = off_policy.snips(SLOT_REWARD, SHOWN_BY_TARGET, PROPENSITY)
    assert ips.value == pytest.approx(0.21)
    assert snips.value == pytest.approx(0.35)


def test_per_list_estimate_is_unbiased_but_worth_one_list():
    weights = off_policy.per_list_weights(SHOWN_BY_TARGET, PROPENSITY)
    # Only list [1, 0] matches the target's: weight 1 / (0.1 * 0.5) = 20.
    np.testing.assert_allclose(weights, np.eye(1, len(LISTS), 16).ravel() * 20.0)
    estimate = off_policy.ips(SLOT_REWARD.mean(axis=1), SHOWN_BY_TARGET.prod(axis=1),
                              PROPENSITY.prod(axis=1))
    assert estimate.value == pytest.approx(0.45)  # 20 * 0.45 / 20 lists
    assert (estimate.effective_sample_size, estimate.matched) == (1.0, 1)


def test_per_list_weights_are_products():
    weights = off_policy.per_list_weights([[1.0, 1.0], [1.0, 0.0], [0.5, 1.0]],
                                          [[0.5, 0.25], [0.1, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(weights, [8.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"target_probs must be \[lists, k\]"):
        off_policy.per_list_weights([1.0], [0.5])


def test_per_slot_snips_recovers_the_stream_rate_of_independent_slots():
    # Independent slots (repeats allowed), epsilon-greedy over 5 tracks: slot k shows the
    # logger's pick g_k unless it explores (probability 0.5), then a uniform track. The logger
    # favours poor tracks; the target shows the best ones, true rate (0.9 + 0.7 + 0.5) / 3.
    rng = np.random.default_rng(2024)
    num_lists, num_tracks, epsilon = 20_000, 5, 0.5
    stream_prob = np.array([0.9, 0.7, 0.5, 0.3, 0.1])
    logger, target = np.array([4, 3, 2]), np.array([0, 1, 2])
    explore = rng.random((num_lists, 3)) < epsilon
    shown = np.where(explore, rng.integers(0, num_tracks, (num_lists, 3)), logger)
    propensity = np.where(shown == logger, 1 - epsilon + epsilon / num_tracks,
                          epsilon / num_tracks)
    rewards = (rng.random((num_lists, 3)) < stream_prob[shown]).astype(float)
    pi = (shown == target).astype(float)
    truth = stream_prob[target].mean()
    assert abs(rewards.mean() - truth) > 0.25  # the naive logged rate is far off (~0.40)

    estimate = off_policy.snips(rewards, pi, propensity)
    # Tolerance: 4 delta-method standard errors of SNIPS, sqrt(sum w^2 (r - V)^2) / sum w;
    # analytically ~0.0047 here, so the check is tight and fails by chance ~1 in 16,000 seeds.
    w = pi / propensity
    se = math.sqrt((w**2 * (rewards - estimate.value) ** 2).sum()) / w.sum()
    assert se < 0.006
    assert abs(estimate.value - truth) < 4 * se
    # IPS is a plain mean of w * r: its standard error is the sample one (~0.010 here).
    ips_se = (w * rewards).std() / math.sqrt(w.size)
    assert abs(off_policy.ips(rewards, pi, propensity).value - truth) < 4 * ips_se
    # E[w] = 1 per slot and E[w^2] = (10 + 10 + 1 / 0.6) / 3, so ESS ~ n / E[w^2] ~ 8,300.
    assert estimate.effective_sample_size == pytest.approx(3 * num_lists / (65 / 9), rel=0.05)


@pytest.mark.parametrize("target, logging, message", [
    ([0.5], [0.0], r"logging_probs must be in \(0, 1\], got 0.0 at index \(0,\)"),
    ([0.5, 0.5], [0.5, 1.5], r"logging_probs must be in \(0, 1\], got 1.5 at index \(1,\)"),
    ([0.5], [np.nan], r"logging_probs must be in \(0, 1\], got nan"),
    ([-0.1], [0.5], r"target_probs must be in \[0, 1\], got -0.1"),
    ([[0.5, 1.2]], [[0.5, 0.5]], r"target_probs must be in \[0, 1\], got 1.2 at index \(0, 1\)"),
    ([0.5, 0.5], [0.5], "target_probs has shape"),
])
def test_importance_weights_reject_bad_probabilities(target, logging, message):
    with pytest.raises(ValueError, match=message):
        off_policy.importance_weights(target, logging)


def test_rewards_must_match_and_be_finite():
    with pytest.raises(ValueError, match="rewards has shape"):
        off_policy.ips([1.0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="rewards must be finite"):
        off_policy.snips([1.0, np.inf], [0.5, 0.5], [0.5, 0.5])
