"""The two-tower model's hyperparameters: model shape and training settings.

Kept apart from `model.py` (which imports TensorFlow Recommenders) so that settings and wiring
(`crossfade.pipeline.configs`, the command line, the KFP compiler) read and validate them
without loading model code. The pipeline's per-dataset choices live in
`crossfade/pipeline/configs.py`; the Trainer receives them as a dict through `custom_config`,
and with a Tuner in the pipeline lays its winner's values over them
(components/tuner/search_space.py).
"""
import dataclasses
import math
from typing import Dict, Optional, Tuple

IN_BATCH = "in_batch"
CATALOGUE = "catalogue"
NEGATIVES = (IN_BATCH, CATALOGUE)
ADAGRAD, ADAM, ADAMW = "adagrad", "adam", "adamw"
OPTIMIZERS = (ADAGRAD, ADAM, ADAMW)
MEAN, WEIGHTED = "mean", "weighted"
HISTORY_POOLINGS = (MEAN, WEIGHTED)
AUTO, BRUTE_FORCE, PARTITIONED = "auto", "brute_force", "partitioned"
INDEXES = (AUTO, BRUTE_FORCE, PARTITIONED)
# `index` auto: catalogues of at least this many tracks are served through the partitioned
# index (components/trainer/served_index.py), smaller ones by brute force, which is exact
# and at 100k tracks still fast (README, "Catalogues of millions").
PARTITIONED_FROM = 250_000

# String fields and the values each takes.
_CHOICES = {"negatives": NEGATIVES, "history_pooling": HISTORY_POOLINGS,
            "optimizer": OPTIMIZERS, "index": INDEXES}
# Integer fields and their least allowed value.
_AT_LEAST = {"embedding_dim": 1, "id_embedding_dim": 1, "content_embedding_dim": 1,
             "hidden_units": 1, "batch_size": 1, "epochs": 1, "max_steps": 0, "seed": 0,
             "index_partitions": 0, "index_probe": 0}
# Float fields: (lower bound, upper bound or None). Bounds are exclusive except where listed.
_BETWEEN: Dict[str, Tuple[float, Optional[float]]] = {
    "temperature": (0.0, None), "learning_rate": (0.0, None),
    "id_dropout": (0.0, 1.0), "history_dropout": (0.0, 1.0),
    "new_release_dropout": (0.0, 1.0), "artist_dropout": (0.0, 1.0),
    "content_loss_weight": (0.0, None), "logq_correction": (0.0, 2.0),
    "weight_decay": (0.0, None)}
# 0 turns these off.
_LOW_ALLOWED = ("id_dropout", "history_dropout", "new_release_dropout", "artist_dropout",
                "content_loss_weight", "logq_correction", "weight_decay")
# The upper bound allowed too: artist_dropout is a share of a share (1 is fine, dropping
# every id is not); logq_correction a multiple.
_HIGH_ALLOWED = ("artist_dropout", "logq_correction")


def _integer(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= minimum (a whole float is accepted), else a ValueError."""
    whole = isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, int) or whole):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: object, low: float, high: Optional[float]) -> float:
    """`value` as a finite float within `name`'s bounds (_BETWEEN, _LOW/_HIGH_ALLOWED)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    low_ok = low <= value if name in _LOW_ALLOWED else low < value
    high_ok = high is None or (value <= high if name in _HIGH_ALLOWED else value < high)
    if low_ok and high_ok:
        return float(value)
    if high is None:
        bound = "at least" if name in _LOW_ALLOWED else "greater than"
        raise ValueError(f"{name} must be {bound} {low:g}, got {value!r}")
    opening = "[" if name in _LOW_ALLOWED else "("
    closing = "]" if name in _HIGH_ALLOWED else ")"
    raise ValueError(f"{name} must be in {opening}{low:g}, {high:g}{closing}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """Model and training settings, validated on construction; defaults are the product's."""

    embedding_dim: int = 64
    id_embedding_dim: int = 64
    content_embedding_dim: int = 16
    hidden_units: int = 128
    temperature: float = 0.05
    learning_rate: float = 0.1
    # "adagrad" updates only the embedding rows a batch touches; "adam" and "adamw" (Adam
    # with decoupled `weight_decay`, which only it takes) move every row's moments each
    # step, so they cost throughput on large tables (README, "Two-tower hyperparameters").
    optimizer: str = ADAGRAD
    weight_decay: float = 0.0
    batch_size: int = 1024
    epochs: int = 5
    max_steps: int = 0  # > 0 caps training (e.g. 1 to build a deliberately weak model)
    id_dropout: float = 0.1
    # Share of the candidates `id_dropout` took whose artist id goes too. 1 where items are
    # artists (Last.fm): an unplayed item's artist is then never known either, and the
    # content-only embedding must be trained on what such an item has (its tags).
    artist_dropout: float = 0.0
    # Weight of a second softmax loss in which every candidate is content only: track id
    # out of vocabulary, and the artist id too for an `artist_dropout` share (DropoutNet
    # style). It trains the path an unplayed track is served through on every example, not
    # only on the `id_dropout` share. 1 puts the model ahead of content-knn on Last.fm's
    # held-out artists; on the default data it lowers cold recall (README, "Cold items").
    content_loss_weight: float = 0.0
    # Share of history entries masked (as padding) in each training step: the query learns
    # to predict a held-out taste from part of a profile, the denoising that keeps whole-
    # profile histories from overfitting.
    history_dropout: float = 0.0
    # How the query tower pools the history's track embeddings: "mean", or "weighted" by a
    # learned per-track weight (model.WeightedMean; one scalar per track, starting equal).
    history_pooling: str = MEAN
    # Whether the query tower embeds the user id. Without it a user is their history (and
    # context): on small data with whole profiles as history (Last.fm) a free per-user vector
    # only overfits.
    use_user_id: bool = True
    # Whether the query tower reads hour and weekday. Off for data without timestamps
    # (Last.fm HetRec): there every training play has timestamp 0, while serving fills a
    # missing timestamp with the current time, so the context would only add skew.
    time_context: bool = True
    # Negatives of the softmax: "in_batch" (the batch's other tracks, logQ-corrected; scales
    # to any catalogue) or "catalogue" (every catalogue track each step: exact, and better
    # for catalogues up to some tens of thousands of tracks).
    negatives: str = IN_BATCH
    # Multiple a of the in-batch logQ correction applied (losses.InBatchSoftmax): 1 is the
    # unbiased full-softmax estimate; above 1 served scores gain a popularity prior
    # (a - 1) log q; below 1 popular tracks are penalised. No effect with catalogue
    # negatives (nothing sampled).
    logq_correction: float = 1.0
    # Whether scores gain a learned bias by the track's age on the request's day and by
    # whether the model sees the track through content only (components/trainer/recency.py).
    # Without release dates (or timestamps) only the content-only lift remains.
    recency_bias: bool = True
    # Share of in-batch candidates in their first `recency.NEW_RELEASE_DAYS` after release
    # whose track and artist ids are both dropped (content only), on top of `id_dropout`:
    # in serving most such tracks have no plays yet, and a debut's artist none either, so
    # the content-only recency bias must learn from tracks of that age. 0.5 and 0.8 gave the
    # same cold Recall@50 on the default data (README, "New releases"); 0.5 costs the rest
    # less. It acts on in-batch candidates (each has its play's day) of a model with
    # recency_bias; catalogue negatives and recency_bias off leave it without effect (the
    # default stays 0.5 so that switching either needs no second setting).
    new_release_dropout: float = 0.5
    # How the served model ranks the catalogue: "brute_force" (every track scored: exact),
    # "partitioned" (an inverted-file index in stock ops: a request scores the members of
    # its `probe` best partitions) or "auto" (partitioned from PARTITIONED_FROM tracks).
    index: str = AUTO
    index_partitions: int = 0  # 0: about 4 sqrt(catalogue size)
    # Partitions a request with probe 0 searches; 0: the least reaching recall@100 0.97 on
    # training queries, calibrated by the Trainer (served_index.least_probe).
    index_probe: int = 0
    seed: int = 7

    def __post_init__(self):
        """Checks every field's type and range; a ValueError names the field. Whole floats
        for int fields (JSON / Struct round trips) and ints for float fields are converted."""
        for name, minimum in _AT_LEAST.items():
            self._set(name, _integer(name, getattr(self, name), minimum))
        for name, (low, high) in _BETWEEN.items():
            self._set(name, _number(name, getattr(self, name), low, high))
        for name in ("use_user_id", "time_context", "recency_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, "
                                 f"got {getattr(self, name)!r}")
        if self.weight_decay > 0 and self.optimizer != ADAMW:
            raise ValueError(f"weight_decay must be 0 unless optimizer is {ADAMW!r}, got "
                             f"{self.weight_decay!r} with {self.optimizer!r}")

    def served_index(self, catalogue_size: int) -> str:
        """BRUTE_FORCE or PARTITIONED: how a model over `catalogue_size` tracks ranks."""
        if self.index != AUTO:
            return self.index
        return PARTITIONED if catalogue_size >= PARTITIONED_FROM else BRUTE_FORCE

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, values: Dict[str, object]) -> "Hyperparameters":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {sorted(unknown)}")
        return cls(**values)
