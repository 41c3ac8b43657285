"""The two-tower model's hyperparameters: model shape and training settings.

Kept apart from `model.py` (which imports TensorFlow Recommenders) so that settings and wiring
(`crossfade.pipeline.configs`, the command line, the KFP compiler) read and validate them
without loading model code. The pipeline's per-dataset choices live in
`crossfade/pipeline/configs.py`; the Trainer receives them as a dict through `custom_config`.
"""
import dataclasses
from typing import Dict

IN_BATCH = "in_batch"
CATALOGUE = "catalogue"
NEGATIVES = (IN_BATCH, CATALOGUE)


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """Model and training settings, validated on construction; defaults are the product's."""

    embedding_dim: int = 64
    id_embedding_dim: int = 64
    content_embedding_dim: int = 16
    hidden_units: int = 128
    temperature: float = 0.05
    learning_rate: float = 0.1
    batch_size: int = 1024
    epochs: int = 5
    max_steps: int = 0  # > 0 caps training (e.g. 1 to build a deliberately weak model)
    id_dropout: float = 0.1
    # Share of history entries masked (as padding) in each training step: the query learns
    # to predict a held-out taste from part of a profile, the denoising that keeps whole-
    # profile histories from overfitting.
    history_dropout: float = 0.0
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
    seed: int = 7

    def __post_init__(self):
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {list(NEGATIVES)}, "
                             f"got {self.negatives!r}")

    @classmethod
    def from_dict(cls, values: Dict[str, object]) -> "Hyperparameters":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {sorted(unknown)}")
        return cls(**values)
