"""What counts as a stream, how much each play teaches the model, and who is a bot.

Plays (one row each) become one of:

* **stream** — `ms_played` >= `min_stream_ms` (30 s, the industry's rule for a counted stream):
  a full positive example, weight 1.
* **skip** — shorter, and ended by the listener moving on (`skipped`, or `reason_end` of
  `fwdbtn`/`backbtn`): kept as a down-weighted positive (`skip_weight`, default 0.1). A skip
  still says the track was a plausible candidate (it was queued for this listener) but much
  less than a stream does; the model's in-batch softmax uses the weight per example.
* **short play** — shorter but not skipped (closed the app, ended the session): weight
  `short_play_weight` (default 0.5).
* plays with no duration information (generic interaction logs: `ms_played` 0 and no
  `reason_end`) are treated as streams.

The eval split keeps streams only: a held-out skip is not something a recommender should be
rewarded for predicting.

Bot accounts are found from their whole history (`bot_accounts`); their plays are removed.
An account with at least `min_bot_plays` plays is a bot when at least two of these signals
hold, at least one of them a farming signal (1 or 2):

1. near-threshold (farming): >= 80 % of its plays last just over the stream threshold
   (within 2 s): paid per stream, a farm plays each track just long enough to count;
2. tiny catalogue (farming): its distinct tracks are <= 5 % of its plays (looping a handful of
   tracks);
3. round the clock: it plays in >= 20 of the 24 hours of the day;
4. never skips: no skip in >= 100 plays.

Signals 3 and 4 alone also describe heavy human listeners (a speaker playing all night, a
listener who never skips), so they only count beside a farming signal; two signals still catch
a bot that looks human on any one feature.
"""
import dataclasses
from typing import Dict

import numpy as np

SKIP_REASONS = ("fwdbtn", "backbtn")
NEAR_THRESHOLD_MS = 2000


@dataclasses.dataclass(frozen=True)
class QualificationRules:
    """Thresholds of the stream and bot rules above."""

    min_stream_ms: int = 30000
    skip_weight: float = 0.1
    short_play_weight: float = 0.5
    min_bot_plays: int = 50
    near_threshold_share: float = 0.8
    round_the_clock_hours: int = 20
    max_distinct_track_share: float = 0.05
    never_skip_min_plays: int = 100
    signals_for_bot: int = 2


# Per-account activity, as columns of one vector so Beam can sum it: plays, plays just over
# the threshold, skips, then plays in each hour of the day.
PLAYS, NEAR_THRESHOLD, SKIPS = 0, 1, 2
HOURS = slice(3, 27)
ACTIVITY_SIZE = 27


def play_kinds(ms_played: np.ndarray, skipped: np.ndarray, reason_end: np.ndarray,
               rules: QualificationRules) -> Dict[str, np.ndarray]:
    """Boolean masks `stream`, `skip`, `short`, `unknown_duration` (disjoint, except that
    unknown ⊂ stream)."""
    unknown = (ms_played == 0) & (reason_end == "")
    stream = (ms_played >= rules.min_stream_ms) | unknown
    moved_on = (skipped == 1) | np.isin(reason_end, SKIP_REASONS)
    return {"stream": stream, "skip": ~stream & moved_on, "short": ~stream & ~moved_on,
            "unknown_duration": unknown}


def play_weights(kinds: Dict[str, np.ndarray], base_weight: np.ndarray,
                 rules: QualificationRules) -> np.ndarray:
    """Training weight of each play: its base weight scaled by its kind."""
    scale = np.where(kinds["stream"], 1.0,
                     np.where(kinds["skip"], rules.skip_weight, rules.short_play_weight))
    return (base_weight * scale).astype(np.float32)


def activity(ms_played: np.ndarray, skipped: np.ndarray, reason_end: np.ndarray,
             ts: np.ndarray, rules: QualificationRules) -> np.ndarray:
    """[n, ACTIVITY_SIZE] one-play activity rows; sum them per account."""
    rows = np.zeros((len(ts), ACTIVITY_SIZE), dtype=np.int64)
    rows[:, PLAYS] = 1
    rows[:, NEAR_THRESHOLD] = ((ms_played >= rules.min_stream_ms)
                               & (ms_played < rules.min_stream_ms + NEAR_THRESHOLD_MS))
    rows[:, SKIPS] = (skipped == 1) | np.isin(reason_end, SKIP_REASONS)
    rows[np.arange(len(ts)), HOURS.start + (ts // 3600) % 24] = 1
    return rows


def is_bot(account_activity: np.ndarray, distinct_tracks: int,
           rules: QualificationRules) -> bool:
    """Applies the two-of-four bot rule to one account's summed activity."""
    plays = int(account_activity[PLAYS])
    if plays < rules.min_bot_plays:
        return False
    farming = [
        account_activity[NEAR_THRESHOLD] >= rules.near_threshold_share * plays,
        distinct_tracks <= rules.max_distinct_track_share * plays,
    ]
    behaviour = [
        np.count_nonzero(account_activity[HOURS]) >= rules.round_the_clock_hours,
        plays >= rules.never_skip_min_plays and account_activity[SKIPS] == 0,
    ]
    return any(farming) and sum(farming) + sum(behaviour) >= rules.signals_for_bot
