"""What the served model knows of each catalogue track: the retrieval index and its display data.

Every array is row-aligned with `ids` (the catalogue's order, C rows). The export turns them
into variables of the SavedModel (components/trainer/export.py).
"""
import dataclasses
from typing import Optional

import numpy as np

from crossfade.components import features


def _texts(values: Optional[np.ndarray], shape) -> np.ndarray:
    if values is None:
        return np.full(shape, features.PAD_TOKEN, dtype=object)
    return np.asarray(values, dtype=object)


@dataclasses.dataclass(frozen=True)
class CatalogueIndex:
    """The catalogue as the served model holds it.

    Attributes:
      ids: [C] track ids (str or bytes), unique.
      embeddings: [C, D] float32 unit-length candidate embeddings.
      play_counts: [C] training plays of each track.
      cold_start_scores: [C] float32 in [0, 1] ranking tracks for cold queries; None: training
        plays relative to the most played track.
      titles, artists: [C] display names ("" where the catalogue has none); None: all "".
      genres: [C, MAX_GENRES], tags: [C, MAX_TAGS] content tokens ("" padding); None: none.
      release_days: [C] int64 days since 1970-01-01 UTC, `features.NO_RELEASE_DAY` where
        unknown; None: all unknown.
      content_only: [C] bool, tracks the model embeds from content alone (their id is out of
        its vocabulary); None: the tracks without training plays.
    """

    ids: np.ndarray
    embeddings: np.ndarray
    play_counts: np.ndarray
    cold_start_scores: Optional[np.ndarray] = None
    titles: Optional[np.ndarray] = None
    artists: Optional[np.ndarray] = None
    genres: Optional[np.ndarray] = None
    tags: Optional[np.ndarray] = None
    release_days: Optional[np.ndarray] = None
    content_only: Optional[np.ndarray] = None

    def __post_init__(self):
        size = len(self.ids)
        if size == 0:
            raise ValueError("the catalogue is empty")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "ids", np.asarray(self.ids, dtype=object))
        set_(self, "embeddings", np.asarray(self.embeddings, dtype=np.float32))
        set_(self, "play_counts", np.asarray(self.play_counts, dtype=np.float32))
        set_(self, "titles", _texts(self.titles, size))
        set_(self, "artists", _texts(self.artists, size))
        set_(self, "genres", _texts(self.genres, (size, features.MAX_GENRES)))
        set_(self, "tags", _texts(self.tags, (size, features.MAX_TAGS)))
        if self.release_days is None:
            set_(self, "release_days", np.full(size, features.NO_RELEASE_DAY))
        set_(self, "release_days", np.asarray(self.release_days, dtype=np.int64))
        if self.content_only is None:
            set_(self, "content_only", self.play_counts == 0)
        set_(self, "content_only", np.asarray(self.content_only, dtype=bool))
        if self.cold_start_scores is None:
            counts = self.play_counts
            set_(self, "cold_start_scores", counts / max(float(counts.max()), 1.0))
        set_(self, "cold_start_scores", np.asarray(self.cold_start_scores, dtype=np.float32))
        for name in ("embeddings", "play_counts", "cold_start_scores", "titles", "artists",
                     "genres", "tags", "release_days", "content_only"):
            rows = len(getattr(self, name))
            if rows != size:
                raise ValueError(f"catalogue {name} has {rows} rows, ids have {size}")

    def __len__(self) -> int:
        return len(self.ids)
