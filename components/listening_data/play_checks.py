"""Plausibility rules for play timestamps and the names of the read counts (no TensorFlow).

A play's timestamp must lie in [`EARLIEST_PLAY_TS`, run clock + `CLOCK_TOLERANCE_SECONDS`]:

* ceiling: the clock of the run reading the data (the ExampleGen's execution) plus one day of
  tolerance for clock skew and time zones. A later play is a broken clock or a unit mistake
  (milliseconds read as seconds); a handful of them would otherwise move the time split's eval
  window into the future.
* floor: 2000-01-01T00:00:00Z. No listening log crossfade reads predates it; earlier values
  are epoch defaults (0 = 1970-01-01) or unit mistakes.

Generic data without a ``timestamp`` column has no order (every ts is 0) and is not checked.
What happens to a play outside the range is the run's `timestamp_policy`: `REJECT` (the
default: the run stops with the file, row and field) or `DROP` (dropped and counted in
`OUT_OF_RANGE_PLAYS`).
"""
EARLIEST_PLAY_TS = 946_684_800  # 2000-01-01T00:00:00Z
CLOCK_TOLERANCE_SECONDS = 86_400

REJECT = "reject"
DROP = "drop"
TIMESTAMP_POLICIES = (REJECT, DROP)

# Counts of rows the plays readers drop, by name (custom properties of PlaysExampleGen's
# examples, shown by `crossfade status`).
DUPLICATE_PLAYS = "duplicate_plays_dropped"
OUT_OF_RANGE_PLAYS = "out_of_range_plays_dropped"
READ_COUNT_NAMES = (DUPLICATE_PLAYS, OUT_OF_RANGE_PLAYS)
# Counts of what likes.csv did (components/example_gen/likes.py), likewise.
LIKES_READ = "likes_read"
LIKES_HELD_OUT = "likes_held_out"
LIKES_ON_PLAYS = "likes_weighting_plays"
LIKED_PLAYS = "liked_plays_weighted"
LIKES_AS_EXAMPLES = "likes_as_examples"
LIKES_WITHOUT_ANCHOR = "likes_without_anchor"
LIKE_COUNT_NAMES = (LIKES_READ, LIKES_HELD_OUT, LIKES_ON_PLAYS, LIKED_PLAYS, LIKES_AS_EXAMPLES,
                    LIKES_WITHOUT_ANCHOR)


def check_timestamp_policy(policy: str) -> str:
    """`policy` if it is one of TIMESTAMP_POLICIES; a ValueError naming the setting otherwise."""
    if policy not in TIMESTAMP_POLICIES:
        raise ValueError(f"timestamp_policy must be one of {list(TIMESTAMP_POLICIES)}, "
                         f"got {policy!r}")
    return policy
