"""Group lists: members, standardisation and each strategy's order on planted scores."""
import numpy as np
import tensorflow as tf

from crossfade.components.trainer import blend

INF = float("inf")


def test_padding_and_repeated_members_are_ignored_and_anonymous_ones_count():
    users = tf.constant([["a", "", "a", "b", ""]])
    recent = tf.constant([[["t1"], [""], ["t2"], [""], ["t9"]]])
    assert blend.member_mask(users, recent).numpy().tolist() == [
        [True, False, False, True, True]]


def test_standardise_is_per_member_and_keeps_exclusions():
    scores = tf.constant([[[0.9, 0.8, 0.7, -INF], [0.2, 0.0, 0.1, -INF]]])
    z = blend.standardise(scores).numpy()
    np.testing.assert_allclose(z[0, 0, :3], [1.2247, 0.0, -1.2247], atol=1e-4)
    np.testing.assert_allclose(z[0, 1, :3], [1.2247, -1.2247, 0.0], atol=1e-4)
    assert z[0, 0, 3] == -INF and z[0, 1, 3] == -INF


# Two members over five tracks, already standardised-looking: A loves t0 and t1, B loves t4;
# t2 is fine for both; t3 is A's second and B's worst.
PLANTED = tf.constant([[[3.0, 2.0, 1.0, 1.5, -2.0],
                        [-1.0, -1.5, 1.0, -3.0, 3.0]]])
BOTH = tf.constant([[True, True]])


def _lists(strategy, k=4, scores=PLANTED, members=BOTH):
    rows, values, whose = blend.build_lists(scores, members, tf.constant([strategy]),
                                            tf.constant(k))
    return rows.numpy()[0].tolist(), values.numpy()[0], whose.numpy()[0].tolist()


def test_each_strategy_orders_a_planted_case_as_documented():
    z = blend.standardise(PLANTED).numpy()[0]
    average = z.mean(axis=0)
    least = z.min(axis=0)
    rows, values, whose = _lists(blend.AVERAGE)
    assert rows == np.argsort(-average, kind="stable")[:4].tolist()
    np.testing.assert_allclose(values, np.sort(average)[::-1][:4], rtol=1e-5)
    assert whose == [int(np.argmax(z[:, r])) for r in rows]
    rows, values, _ = _lists(blend.LEAST_MISERY)
    assert rows[0] == 2  # the one track nobody minds
    assert rows == np.argsort(-least, kind="stable")[:4].tolist()
    rows, _, whose = _lists(blend.FAIR_INTERLEAVE)
    assert rows == [0, 4, 1, 2] and whose == [0, 1, 0, 1]  # turns: A, B, A, B


def test_one_member_gets_their_own_ranking_whatever_the_strategy():
    scores = tf.constant([[[0.1, 0.5, 0.3, 0.4]], [[0.2, 0.1, 0.0, 0.3]]])
    members = tf.constant([[True], [True]])
    for strategy in blend.STRATEGIES.values():
        rows, _, whose = blend.build_lists(scores, members, tf.constant([strategy] * 2),
                                           tf.constant(3))
        assert rows.numpy().tolist() == [[1, 3, 2], [3, 0, 1]]
        assert whose.numpy().tolist() == [[0, 0, 0], [0, 0, 0]]


def test_rows_mix_strategies_and_run_out_of_eligible_tracks():
    scores = tf.concat([PLANTED, tf.constant([[[1.0, -INF, -INF, 0.5, -INF],
                                               [0.0, -INF, -INF, 1.0, -INF]]])], axis=0)
    rows, values, whose = blend.build_lists(scores, tf.constant([[True, True]] * 2),
                                            tf.constant([blend.LEAST_MISERY,
                                                         blend.FAIR_INTERLEAVE]),
                                            tf.constant(3))
    assert rows.numpy()[0, 0] == 2
    assert rows.numpy()[1].tolist() == [0, 3, -1]  # two eligible tracks, then nothing
    assert whose.numpy()[1].tolist() == [0, 1, -1]
    assert values.numpy()[1, 2] == -INF


def test_padding_member_between_real_ones_does_not_take_a_turn():
    scores = tf.stack([PLANTED[0, 0], tf.zeros([5]), PLANTED[0, 1]])[None]
    rows, _, whose = _lists(blend.FAIR_INTERLEAVE, scores=scores,
                            members=tf.constant([[True, False, True]]))
    assert rows == [0, 4, 1, 2] and whose == [0, 2, 0, 2]
