"""The 30-second rule, play weights and the two-of-four bot rule."""
import numpy as np

from crossfade.components.stream_qualification import rules as rules_lib

RULES = rules_lib.QualificationRules()


def _kinds(ms, skipped, reason):
    return rules_lib.play_kinds(np.array(ms), np.array(skipped), np.array(reason, object), RULES)


def test_thirty_second_boundary():
    kinds = _kinds([29_999, 30_000, 29_999], [0, 0, 1], ["endplay", "endplay", "fwdbtn"])
    assert kinds["stream"].tolist() == [False, True, False]
    assert kinds["short"].tolist() == [True, False, False]
    assert kinds["skip"].tolist() == [False, False, True]


def test_reason_alone_marks_a_skip_and_unknown_durations_count_as_streams():
    kinds = _kinds([5_000, 0, 0], [0, 0, 0], ["backbtn", "", "endplay"])
    assert kinds["skip"].tolist() == [True, False, False]
    assert kinds["unknown_duration"].tolist() == [False, True, False]
    assert kinds["stream"].tolist() == [False, True, False]
    assert kinds["short"].tolist() == [False, False, True]  # 0 ms with a reason is real


def test_weights_scale_the_base_weight_by_kind():
    kinds = _kinds([40_000, 3_000, 10_000], [0, 1, 0], ["trackdone", "fwdbtn", "endplay"])
    weights = rules_lib.play_weights(kinds, np.array([2.0, 2.0, 2.0]), RULES)
    np.testing.assert_allclose(weights, [2.0, 2.0 * RULES.skip_weight,
                                         2.0 * RULES.short_play_weight])


def _account(ms, hours, tracks, skipped=None):
    n = len(ms)
    skipped = np.zeros(n, int) if skipped is None else np.array(skipped)
    reasons = np.where(skipped == 1, "fwdbtn", "trackdone").astype(object)
    rows = rules_lib.activity(np.array(ms), skipped, reasons, np.array(hours) * 3600, RULES)
    return rows.sum(axis=0), len(set(tracks))


def test_farming_bot_is_caught():
    activity, distinct = _account([30_500] * 240, [h % 24 for h in range(240)],
                                  [t % 4 for t in range(240)])
    assert rules_lib.is_bot(activity, distinct, RULES)


def test_bot_that_looks_human_on_one_feature_is_still_caught():
    # Varied durations (not near the threshold) but round the clock, 4 tracks, never skips.
    rng = np.random.default_rng(0)
    activity, distinct = _account(rng.integers(60_000, 240_000, 240).tolist(),
                                  [h % 24 for h in range(240)], [t % 4 for t in range(240)])
    assert rules_lib.is_bot(activity, distinct, RULES)
    # Skips now and then, but near-threshold and looping 3 tracks.
    skipped = [1 if i % 10 == 0 else 0 for i in range(200)]
    activity, distinct = _account([30_200] * 200, [h % 12 for h in range(200)],
                                  [t % 3 for t in range(200)], skipped)
    assert rules_lib.is_bot(activity, distinct, RULES)


def test_heavy_human_listener_is_not_a_bot():
    rng = np.random.default_rng(1)
    # Plays at every hour and never skips, but a wide catalogue and natural durations.
    activity, distinct = _account(rng.integers(120_000, 300_000, 500).tolist(),
                                  [h % 24 for h in range(500)], list(range(300)))
    assert not rules_lib.is_bot(activity, distinct, RULES)


def test_small_accounts_are_never_bots():
    activity, distinct = _account([30_100] * 20, list(range(20)), [1] * 20)
    assert not rules_lib.is_bot(activity, distinct, RULES)
