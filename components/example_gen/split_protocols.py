"""Split protocols: which of train, eval and test each play belongs to.

A protocol is chosen per dataset and recorded with every result (it is part of the
ExampleGen's configuration, so it also keys TFX's cache):

* ``time`` (the default when plays have timestamps): plays on the last `eval_days` UTC days
  form `eval`; with `test_days` > 0 the last `test_days` days form `test` and `eval` is the
  `eval_days` days before them. Everything earlier trains. This is how a deployed model meets
  the future.
* ``leave-last-out``: per user, the latest play is `test` and the one before it `eval`; users
  with fewer than three plays only train.
* ``random``: per user, the user's plays are shuffled with a fixed seed and divided by
  `ratios` (default 8:1:1) into train, eval and test, with RecBole's rounding (a user with a
  handful of plays still gets one eval and one test play while two or more stay in train).
  This is the protocol of the published Last.fm HetRec results; it is the default for data
  without timestamps.

The ``random`` protocol may also hold out **cold items** (`cold_items`, a share of the
catalogue's items chosen by a hash of the item id and the seed): every play of such an item is
`test` (and its likes are unused), so the model never sees them played and the test split
measures cold-start recommendation (an artist that appears on the service tomorrow). Plays of
other items keep their label. Only ``random``: a sequential protocol's histories run through
every earlier play, cold ones included, and timestamped data has its own cold items (new
releases, which the time split leaves in eval and test as they come).

`eval` drives the Evaluator's blessing (and hyperparameter choices); `test` is only read by
the quality benchmark. Sequential protocols (time, leave-last-out) give each play the user's
previous plays as history; `random` has no order, so a play's history is drawn from the
user's other training plays (see components/example_gen/history.py).
"""
import dataclasses
from typing import Any, Dict, List, Tuple

import numpy as np
import pandas as pd

TIME = "time"
LEAVE_LAST_OUT = "leave-last-out"
RANDOM = "random"
AUTO = "auto"  # time when the data has timestamps, random otherwise
PROTOCOLS = (TIME, LEAVE_LAST_OUT, RANDOM)

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"
TRAIN, EVAL, TEST = 0, 1, 2  # split labels, indices into SPLIT_NAMES
SPLIT_NAMES = (TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT)
SECONDS_PER_DAY = 86400


@dataclasses.dataclass(frozen=True)
class SplitProtocol:
    """A split protocol and its parameters (see the module docstring)."""

    name: str = AUTO
    eval_days: int = 3  # time
    test_days: int = 0  # time; 0: no test split
    ratios: Tuple[float, float, float] = (0.8, 0.1, 0.1)  # random: train, eval, test
    # random: the shuffle and the cold items; also the history draws of non-sequential data
    seed: int = 0
    cold_items: float = 0.0  # random: share of items whose every play is test

    def __post_init__(self):
        if self.name not in PROTOCOLS + (AUTO,):
            raise ValueError(f"split protocol must be one of {list(PROTOCOLS + (AUTO,))}, "
                             f"got {self.name!r}")
        if self.eval_days < 1:
            raise ValueError(f"eval_days must be at least 1, got {self.eval_days}")
        if self.test_days < 0:
            raise ValueError(f"test_days must be at least 0, got {self.test_days}")
        ratios = tuple(float(r) for r in self.ratios)
        if len(ratios) != 3 or min(ratios) <= 0 or abs(sum(ratios) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be three positive shares summing to 1, "
                             f"got {self.ratios}")
        object.__setattr__(self, "ratios", ratios)
        if not 0.0 <= self.cold_items < 1.0:
            raise ValueError(f"cold_items must be in [0, 1), got {self.cold_items}")
        self._check_cold_items()

    def resolve(self, has_timestamps: bool) -> "SplitProtocol":
        """This protocol with AUTO replaced by the dataset's default."""
        if self.name != AUTO:
            if self.name != RANDOM and not has_timestamps:
                raise ValueError(f"the '{self.name}' split needs timestamps and the data has "
                                 f"none; use the '{RANDOM}' split")
            return self
        return dataclasses.replace(self, name=TIME if has_timestamps else RANDOM)

    def _check_cold_items(self) -> None:
        if self.cold_items > 0 and self.name not in (RANDOM, AUTO):
            raise ValueError(f"cold_items needs the '{RANDOM}' split, not '{self.name}' (see "
                             "components/example_gen/split_protocols.py)")

    @property
    def sequential(self) -> bool:
        """Whether plays have an order that history may follow."""
        return self.name in (TIME, LEAVE_LAST_OUT)

    def split_names(self) -> List[str]:
        """The ExampleGen output splits: train and eval, and test when the protocol has one."""
        if self.name == TIME and self.test_days == 0:
            return [TRAIN_SPLIT, EVAL_SPLIT]
        return list(SPLIT_NAMES)

    def describe(self, with_seed: bool = True) -> str:
        """One line for reports, e.g. 'random 8:1:1 per user, seed 0'."""
        cold = (f"; {self.cold_items * 100:g}% of items cold (test only)" if self.cold_items
                else "")
        if self.name == TIME:
            test = f", test: last {self.test_days} day(s)" if self.test_days else ""
            return f"time (eval: {self.eval_days} day(s) before the end{test})" + cold
        if self.name == RANDOM:
            shares = ":".join(f"{r * 10:g}" for r in self.ratios)
            return (f"random {shares} per user" + (f", seed {self.seed}" if with_seed else "")
                    + cold)
        return self.name + cold

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["ratios"] = list(self.ratios)
        return values

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "SplitProtocol":
        values = dict(values)
        for name in ("eval_days", "test_days", "seed"):
            if name in values:  # Struct round trips turn ints into floats
                values[name] = int(values[name])
        if "ratios" in values:
            values["ratios"] = tuple(values["ratios"])
        return cls(**values)


def period_starts(latest_ts: int, eval_days: int, test_days: int) -> Tuple[int, int]:
    """(first second of eval, first second of test) for the time protocol.

    Periods are whole UTC days ending with the day of `latest_ts`; without a test period the
    test start lies after every play.
    """
    last_day_start = (latest_ts // SECONDS_PER_DAY) * SECONDS_PER_DAY
    if test_days == 0:
        test_start = latest_ts + 1
        eval_start = last_day_start - (eval_days - 1) * SECONDS_PER_DAY
    else:
        test_start = last_day_start - (test_days - 1) * SECONDS_PER_DAY
        eval_start = test_start - eval_days * SECONDS_PER_DAY
    return eval_start, test_start


def time_labels(ts: np.ndarray, eval_start: int, test_start: int) -> np.ndarray:
    """Split label per play by its timestamp."""
    return np.where(ts >= test_start, TEST, np.where(ts >= eval_start, EVAL, TRAIN))


def cold_item_rows(track_id: np.ndarray, share: float, seed: int) -> np.ndarray:
    """[n] bool: the plays whose item is one of the `share` of items held out as cold.

    An item is cold when a hash of (seed, item id) falls in the lowest `share` of the hash
    range: the same items whatever the sharding, about `share` of any catalogue, and a
    different set for each seed.
    """
    if share <= 0 or len(track_id) == 0:
        return np.zeros(len(track_id), dtype=bool)
    codes, items = pd.factorize(np.asarray(track_id, dtype=object))
    keys = np.array([f"{seed}:{item}" for item in items], dtype=object)
    cold = pd.util.hash_array(keys, hash_key="crossfade-cold-1") < np.uint64(
        share * float(2**64))
    return cold[codes]


def user_bounds(user_id: np.ndarray) -> np.ndarray:
    """Start offsets of each user's run of rows (plus the end), for rows sorted by user."""
    changes = np.flatnonzero(user_id[1:] != user_id[:-1]) + 1
    return np.concatenate([[0], changes, [len(user_id)]])


def leave_last_out_labels(user_id: np.ndarray) -> np.ndarray:
    """Per user (rows sorted by user, then time): last -> test, second last -> eval."""
    labels = np.full(len(user_id), TRAIN, dtype=np.int64)
    bounds = user_bounds(user_id)
    starts, ends = bounds[:-1], bounds[1:]
    enough = (ends - starts) >= 3
    labels[ends[enough] - 1] = TEST
    labels[ends[enough] - 2] = EVAL
    return labels


def held_out_counts(size: int, ratios: Tuple[float, float, float]) -> Tuple[int, int, int]:
    """(train, eval, test) sizes of one user's `size` plays, rounded as RecBole does.

    Held-out parts get floor(ratio x size); a part whose exact share is between 0 and 1
    still gets one play, taken from train while train keeps more than one.
    """
    counts = [int(ratio * size) for ratio in ratios]
    counts[0] = size - sum(counts[1:])
    for part in (2, 1):  # test first, then eval
        if counts[0] <= 1:
            break
        if 0 < ratios[part] * size < 1:
            counts[part] += 1
            counts[0] -= 1
    return counts[0], counts[1], counts[2]


def user_seed(user: str, seed: int) -> int:
    """A per-user seed that depends on nothing but the user id and the protocol seed, so the
    split is the same however plays are sharded across workers."""
    return int(pd.util.hash_array(np.array([f"{seed}:{user}"], dtype=object))[0])


def random_labels(user_id: np.ndarray, ratios: Tuple[float, float, float],
                  seed: int) -> np.ndarray:
    """Per user (rows grouped by user, in a deterministic order): a seeded 8:1:1-style split."""
    labels = np.empty(len(user_id), dtype=np.int64)
    bounds = user_bounds(user_id)
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        train, evaluation, _ = held_out_counts(int(end - start), ratios)
        order = np.random.default_rng(user_seed(user_id[start], seed)).permutation(end - start)
        user_labels = np.full(end - start, TEST, dtype=np.int64)
        user_labels[order[:train]] = TRAIN
        user_labels[order[train:train + evaluation]] = EVAL
        labels[start:end] = user_labels
    return labels
