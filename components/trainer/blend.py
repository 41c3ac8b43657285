"""In-graph group lists for the `blend` signature: one list for two to five listeners.

A row of a `blend` request names up to `MAX_MEMBERS` members (a user id and recent tracks
each). The export scores every member against the candidates — the whole catalogue, or
through a partitioned index the tracks it found (below) — as `serving_default` would
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

**Through a partitioned index** (components/trainer/export.py) the candidates are the union
of each member's index pool and, for `AVERAGE`, of one more search: a warm member's z is
linear in the track's embedding and the recency bias is every member's alike, so the mean z
of warm members ranks as the query sum(q_m / sd_m) / sum(1 / sd_m) does; its pool holds the
`AVERAGE` list up to the index's recall. `FAIR_INTERLEAVE` takes each member's own best
tracks, which their own pool holds. `LEAST_MISERY`, and `AVERAGE` for a group with a cold
member, rank only the union: a track in no pool cannot be listed. Each member's mean and
sd (`spread`) come from a fixed uniform sample of the catalogue for a warm member
(export.BLEND_SAMPLE tracks: the whole catalogue when smaller) and exactly for a cold one
(their scores do not depend on the query).

**Strategies** (`strategy` [B] int32):

* `AVERAGE` (0): a track's group score is the mean of the members' z; the list is the top K.
  Maximises the members' total satisfaction ("joy"), the choice Spotify describes for Blend;
  a member with unusual taste can be outvoted.
* `LEAST_MISERY` (1): the group score is the *smallest* z among the members (Baltrunas et
  al., RecSys 2010): a track is only as good as its least happy member finds it.
* `FAIR_INTERLEAVE` (2): slots take turns, members in their column order: slot j belongs to
  member (j mod m) of the m members, who gets their own best track not yet listed. Every
  member gets an equal share of the slots by construction.

**Outputs** per slot: the candidate column (-1 when no eligible track is left), the group score
(`AVERAGE`: mean z, `LEAST_MISERY`: min z, `FAIR_INTERLEAVE`: the picking member's z), and
`for_member`, the member column the track is chiefly for (`FAIR_INTERLEAVE`: whose turn it
was; otherwise the member with the highest z for it), -1 for an empty slot.

Stock TensorFlow ops only. Cost: one [B, M, C] standardisation over the C candidates, then
per strategy some row asks for: a [B, C] group score and top K (`AVERAGE`, `LEAST_MISERY`),
or each member's top K and K small sequential steps over them (`FAIR_INTERLEAVE`).
"""
from typing import Optional, Tuple

import tensorflow as tf

AVERAGE, LEAST_MISERY, FAIR_INTERLEAVE = 0, 1, 2
STRATEGIES = {"average": AVERAGE, "least-misery": LEAST_MISERY,
              "fair-interleave": FAIR_INTERLEAVE}
MAX_MEMBERS = 5
_NEG_INF = -float("inf")
MIN_SD = 1e-6  # a member whose scores are all equal (a cold member's ties) divides by this


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


def moments(scores: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(mean, standard deviation) [B, M, 1] of each member's finite `scores` [B, M, C]."""
    finite = tf.math.is_finite(scores)
    count = tf.maximum(tf.reduce_sum(tf.cast(finite, scores.dtype), axis=2, keepdims=True),
                       1.0)
    mean = tf.reduce_sum(tf.where(finite, scores, 0.0), axis=2, keepdims=True) / count
    variance = tf.reduce_sum(tf.where(finite, tf.square(scores - mean), 0.0), axis=2,
                             keepdims=True) / count
    return mean, tf.sqrt(variance)


def standardise(scores: tf.Tensor,
                spread: Optional[Tuple[tf.Tensor, tf.Tensor]] = None) -> tf.Tensor:
    """[B, M, C] z-scores of each member's `scores` by `spread`, their (mean, sd) [B, M, 1]
    over the eligible catalogue (None: `moments(scores)`, `scores` being the whole eligible
    catalogue's); -inf kept."""
    mean, sd = moments(scores) if spread is None else spread
    z = (scores - mean) / tf.maximum(sd, MIN_SD)
    return tf.where(tf.math.is_finite(scores), z, _NEG_INF)


def average_scores(z: tf.Tensor, members: tf.Tensor) -> tf.Tensor:
    """[B, C] `AVERAGE` group scores: the mean z of the members (-inf stays -inf)."""
    count = tf.maximum(tf.reduce_sum(tf.cast(members, z.dtype), axis=1), 1.0)[:, None]
    return tf.reduce_sum(tf.where(members[:, :, None], z, 0.0), axis=1) / count


def least_misery_scores(z: tf.Tensor, members: tf.Tensor) -> tf.Tensor:
    """[B, C] `LEAST_MISERY` group scores: the smallest z among the members."""
    return tf.reduce_min(tf.where(members[:, :, None], z, float("inf")), axis=1)


def _favourite(z: tf.Tensor, members: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """[B, K] the member column with the highest z for each listed candidate column."""
    listed = tf.gather(z, tf.maximum(rows, 0), axis=2, batch_dims=1)  # [B, M, K]
    listed = tf.where(members[:, :, None], listed, _NEG_INF)
    return tf.argmax(listed, axis=1, output_type=tf.int32)


def interleave(z: tf.Tensor, members: tf.Tensor, k: tf.Tensor
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`FAIR_INTERLEAVE`: (candidate columns [B, k] or -1, picking member's z [B, k],
    member [B, k]).

    At most k - 1 tracks are listed before any turn, so a member's best remaining track is
    always among their own top k: the turns run over each member's top k ([B, M, k]) rather
    than the catalogue, k steps of O(k) work instead of O(C).
    """
    turn_of = tf.cumsum(tf.cast(members, tf.int32), axis=1) - 1  # member's place in its turn
    count = tf.maximum(tf.reduce_sum(tf.cast(members, tf.int32), axis=1), 1)
    own_top = tf.math.top_k(z, k=k)  # per member, best first; ties by lower row
    listed = tf.fill(tf.stack([tf.shape(z)[0], k]), -1)
    values = tf.TensorArray(z.dtype, size=k)
    whose = tf.TensorArray(tf.int32, size=k)
    for slot in tf.range(k):
        turn = tf.logical_and(members, tf.equal(turn_of, (slot % count)[:, None]))
        member = tf.argmax(tf.cast(turn, tf.int32), axis=1, output_type=tf.int32)
        rows = tf.gather(own_top.indices, member, axis=1, batch_dims=1)  # [B, k]
        scores = tf.gather(own_top.values, member, axis=1, batch_dims=1)
        taken = tf.reduce_any(tf.equal(rows[:, :, None], listed[:, None, :]), axis=2)
        scores = tf.where(taken, _NEG_INF, scores)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        value = tf.gather(scores, best, axis=1, batch_dims=1)
        found = tf.math.is_finite(value)
        row = tf.where(found, tf.gather(rows, best, axis=1, batch_dims=1), -1)
        listed = tf.where(tf.equal(tf.range(k)[None, :], slot), row[:, None], listed)
        values = values.write(slot, value)
        whose = whose.write(slot, tf.where(found, member, -1))
    return listed, tf.transpose(values.stack()), tf.transpose(whose.stack())


def build_lists(scores: tf.Tensor, members: tf.Tensor, strategy: tf.Tensor, k: tf.Tensor,
                spread: Optional[Tuple[tf.Tensor, tf.Tensor]] = None
                ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One list per row; see the module docstring.

    Args:
      scores: [B, M, C] float32 member scores of C candidates (the catalogue, or the
        candidates an index found, in catalogue order: ties go to the lower column), -inf
        for excluded (or repeated) candidates.
      members: [B, M] bool from `member_mask` (at least one per row).
      strategy: [B] int32, one of `STRATEGIES`' values.
      k: scalar int32 slots (at most C).
      spread: each member's (mean, sd) [B, M, 1] over the eligible catalogue
        (`standardise`); None: `scores`', which must then be the whole eligible catalogue.

    Returns:
      rows [B, k] int32 candidate columns (-1: none left), group scores [B, k] float32 and
      for_member [B, k] int32 member columns (-1 for an empty slot). Each strategy is computed
      only when some row asks for it.
    """
    z = standardise(scores, spread)
    empty = tf.fill(tf.stack([tf.shape(z)[0], k]), -1)
    nothing = (empty, tf.cast(empty, z.dtype), empty)  # rows no strategy has filled

    def ranked(group_score):
        def run():
            top = tf.math.top_k(group_score(z, members), k=k)
            found = tf.math.is_finite(top.values)
            return (tf.where(found, top.indices, -1), top.values,
                    tf.where(found, _favourite(z, members, top.indices), -1))
        return run

    strategies = {AVERAGE: ranked(average_scores), LEAST_MISERY: ranked(least_misery_scores),
                  FAIR_INTERLEAVE: lambda: interleave(z, members, k)}
    result = nothing
    for name, run in strategies.items():
        wanted = tf.equal(strategy, name)
        lists = tf.cond(tf.reduce_any(wanted), run, lambda: nothing)
        result = tuple(tf.where(wanted[:, None], new, old)
                       for new, old in zip(lists, result, strict=True))
    return result
