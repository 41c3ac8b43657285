"""In-graph group lists for the `blend` signature: one list for two to five listeners.

A row of a `blend` request names up to `MAX_MEMBERS` members (a user id and recent tracks
each). The export scores every member against the whole catalogue as `serving_default` would
(cosines; a cold member gets the cold-start ranking's scores), sets excluded tracks to -inf
for everyone, and this module turns the [B, M, C] member scores into one list per row.

**Members.** A column whose user id is "" and whose recent tracks are all "" is padding and
is ignored (`member_mask`); so is a repeat of an earlier column's non-empty user id (a member
named twice counts once). A column with user id "" but recent tracks is an anonymous member.
Every row needs at least one member; with exactly one, every strategy gives that member's
`serving_default` list.

**Comparable scores.** Members' cosines are not on one scale (a listener with a narrow taste
has a few very high cosines), so each member's scores are standardised over the eligible
catalogue first: z = (score - mean) / sd, per member (`standardise`). The strategies work on z.

**Strategies** (`strategy` [B] int32):

* `AVERAGE` (0): a track's group score is the mean of the members' z; the list is the top K.
  Maximises the members' total satisfaction ("joy"), the choice Spotify describes for Blend;
  a member with unusual taste can be outvoted.
* `LEAST_MISERY` (1): the group score is the *smallest* z among the members (Baltrunas et
  al., RecSys 2010): a track is only as good as its least happy member finds it.
* `FAIR_INTERLEAVE` (2): slots take turns, members in their column order: slot j belongs to
  member (j mod m) of the m members, who gets their own best track not yet listed. Every
  member gets an equal share of the slots by construction.

**Outputs** per slot: the catalogue row (-1 when no eligible track is left), the group score
(`AVERAGE`: mean z, `LEAST_MISERY`: min z, `FAIR_INTERLEAVE`: the picking member's z), and
`for_member`, the member column the track is chiefly for (`FAIR_INTERLEAVE`: whose turn it
was; otherwise the member with the highest z for it), -1 for an empty slot.

Stock TensorFlow ops only. Cost: one [B, M, C] standardisation and, for `FAIR_INTERLEAVE`, K
sequential arg-max steps over [B, C] (run only when a row asks for it).
"""
from typing import Dict, Tuple

import tensorflow as tf

AVERAGE, LEAST_MISERY, FAIR_INTERLEAVE = 0, 1, 2
STRATEGIES = {"average": AVERAGE, "least-misery": LEAST_MISERY,
              "fair-interleave": FAIR_INTERLEAVE}
MAX_MEMBERS = 5
_NEG_INF = -float("inf")
_MIN_SD = 1e-6  # a member whose scores are all equal (a cold member's ties) divides by this


def member_mask(user_ids: tf.Tensor, recent_track_ids: tf.Tensor) -> tf.Tensor:
    """[B, M] bool: the real, distinct members of each row (module docstring)."""
    named = tf.not_equal(user_ids, "")
    real = tf.logical_or(named, tf.reduce_any(tf.not_equal(recent_track_ids, ""), axis=2))
    same = tf.logical_and(tf.equal(user_ids[:, :, None], user_ids[:, None, :]),
                          named[:, :, None])  # [B, earlier i, later j]
    members = tf.shape(user_ids)[1]
    earlier = tf.linalg.band_part(tf.ones([members, members], tf.bool), 0, -1)  # i <= j
    earlier = tf.logical_and(earlier, tf.logical_not(tf.eye(members, dtype=tf.bool)))
    repeated = tf.reduce_any(tf.logical_and(same, earlier[None]), axis=1)
    return tf.logical_and(real, tf.logical_not(repeated))


def standardise(scores: tf.Tensor) -> tf.Tensor:
    """[B, M, C] z-scores of each member's scores over its finite entries (-inf kept)."""
    finite = tf.math.is_finite(scores)
    count = tf.maximum(tf.reduce_sum(tf.cast(finite, scores.dtype), axis=2, keepdims=True), 1.0)
    zeroed = tf.where(finite, scores, 0.0)
    mean = tf.reduce_sum(zeroed, axis=2, keepdims=True) / count
    variance = tf.reduce_sum(tf.where(finite, tf.square(scores - mean), 0.0), axis=2,
                             keepdims=True) / count
    z = (scores - mean) / tf.maximum(tf.sqrt(variance), _MIN_SD)
    return tf.where(finite, z, _NEG_INF)


def group_scores(z: tf.Tensor, members: tf.Tensor) -> Dict[int, tf.Tensor]:
    """[B, C] group scores of the ranked strategies (`AVERAGE`, `LEAST_MISERY`)."""
    weight = tf.cast(members, z.dtype)[:, :, None]
    count = tf.maximum(tf.reduce_sum(weight, axis=1), 1.0)
    average = tf.reduce_sum(tf.where(members[:, :, None], z, 0.0), axis=1) / count
    # Excluded tracks are -inf for every member, so the mean above stays -inf for them.
    least = tf.reduce_min(tf.where(members[:, :, None], z, float("inf")), axis=1)
    return {AVERAGE: average, LEAST_MISERY: least}


def _favourite(z: tf.Tensor, members: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """[B, K] the member column with the highest z for each listed catalogue row."""
    listed = tf.gather(z, tf.maximum(rows, 0), axis=2, batch_dims=1)  # [B, M, K]
    listed = tf.where(members[:, :, None], listed, _NEG_INF)
    return tf.argmax(listed, axis=1, output_type=tf.int32)


def interleave(z: tf.Tensor, members: tf.Tensor, k: tf.Tensor
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`FAIR_INTERLEAVE`: (rows [B, k] or -1, picking member's z [B, k], member [B, k])."""
    turn_of = tf.cumsum(tf.cast(members, tf.int32), axis=1) - 1  # member's place in its turn
    count = tf.maximum(tf.reduce_sum(tf.cast(members, tf.int32), axis=1), 1)
    catalogue = tf.shape(z)[2]
    blocked = tf.zeros(tf.stack([tf.shape(z)[0], catalogue]), z.dtype)
    rows = tf.TensorArray(tf.int32, size=k)
    values = tf.TensorArray(z.dtype, size=k)
    whose = tf.TensorArray(tf.int32, size=k)
    for slot in tf.range(k):
        turn = tf.logical_and(members, tf.equal(turn_of, (slot % count)[:, None]))
        member = tf.argmax(tf.cast(turn, tf.int32), axis=1, output_type=tf.int32)
        own = tf.gather(z, member, axis=1, batch_dims=1) + blocked  # [B, C]
        best = tf.argmax(own, axis=1, output_type=tf.int32)
        value = tf.gather(own, best, axis=1, batch_dims=1)
        found = tf.math.is_finite(value)
        rows = rows.write(slot, tf.where(found, best, -1))
        values = values.write(slot, value)
        whose = whose.write(slot, tf.where(found, member, -1))
        blocked += tf.one_hot(best, catalogue, on_value=_NEG_INF, off_value=0.0,
                              dtype=z.dtype)
    return (tf.transpose(rows.stack()), tf.transpose(values.stack()),
            tf.transpose(whose.stack()))


def build_lists(scores: tf.Tensor, members: tf.Tensor, strategy: tf.Tensor, k: tf.Tensor
                ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One list per row; see the module docstring.

    Args:
      scores: [B, M, C] float32 member scores, -inf for excluded tracks.
      members: [B, M] bool from `member_mask` (at least one per row).
      strategy: [B] int32, one of `STRATEGIES`' values.
      k: scalar int32 slots (at most C).

    Returns:
      rows [B, k] int32 catalogue rows (-1: none left), group scores [B, k] float32 and
      for_member [B, k] int32 member columns (-1 for an empty slot).
    """
    z = standardise(scores)
    ranked_rows, ranked_values, ranked_for = [], [], []
    for name, group in group_scores(z, members).items():
        top = tf.math.top_k(group, k=k)
        found = tf.math.is_finite(top.values)
        ranked_rows.append((name, tf.where(found, top.indices, -1)))
        ranked_values.append((name, top.values))
        ranked_for.append((name, tf.where(found, _favourite(z, members, top.indices), -1)))

    def interleaved():
        return interleave(z, members, k)

    def skipped():
        empty = tf.fill(tf.stack([tf.shape(z)[0], k]), -1)
        return empty, tf.cast(empty, z.dtype), empty

    wanted = tf.reduce_any(tf.equal(strategy, FAIR_INTERLEAVE))
    fair = tf.cond(wanted, interleaved, skipped)
    choice = strategy[:, None]

    def select(ranked, fair_value):
        result = fair_value
        for name, value in ranked:
            result = tf.where(tf.equal(choice, name), value, result)
        return result

    return (select(ranked_rows, fair[0]), select(ranked_values, fair[1]),
            select(ranked_for, fair[2]))
