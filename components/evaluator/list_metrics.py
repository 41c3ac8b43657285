"""The one numpy definition of crossfade's per-list metrics: intra-list diversity and novelty.

Both judge a recommendation list as a whole, not by whether it holds the held-out play. The
Evaluator reads them from the exported model's `evaluate_examples` outputs (computed in the
graph by components/trainer/export.py over the first `LIST_CUTOFF` tracks); this module is
what the quality benchmark computes them with and what tests check the in-graph version
against.

Lists are [B, K] integer catalogue rows, best first; a negative entry is an empty slot and is
ignored. Every column a caller passes counts: pass ``lists[:, :LIST_CUTOFF]`` for the @10
metrics.

* Content (`content_matrix`): a track is the binary vector of its genre and tag tokens. Genre
  and tag tokens are kept apart (the genre "rock" and the tag "rock" are different columns):
  the two vocabularies come from different sources and mean different things. Tokens are
  compared exactly (no case folding), as the model's vocabularies do.
* Intra-list diversity (`intra_list_diversity`): the mean, over pairs of slots i < j, of
  1 - cos(c_i, c_j). Pairs in which either track has no content are left out, since distance
  to an unknown is not zero and not one; a list without such a pair is NaN, so callers average
  over the lists that have a value. Cosine of binary vectors is in [0, 1], so is the metric.
  Slots are compared by position: a track listed twice adds a zero-distance pair.
* Novelty (`self_information`, `novelty`): the mean self-information of the listed tracks,
  -log2 p_i in bits with p_i = (training plays of i + 1) / (total training plays + catalogue
  size). The add-one smoothing gives never-played tracks a finite value (the highest) and keeps
  p a distribution over the catalogue. A list with no track is NaN.
"""
from typing import Tuple, Union

import numpy as np
import scipy.sparse as sp

LIST_CUTOFF = 10  # ILD@10 and novelty@10: the list a listener sees first

# Lists per block in intra_list_diversity: a block gathers both tracks of each of its pairs (45
# per list of 10, up to 11 tokens a track), some tens of MB however many lists there are.
_BLOCK_LISTS = 2048


def _text(values: np.ndarray) -> np.ndarray:
    """`values` as an object array of str (bytes decoded as UTF-8)."""
    flat = np.asarray(values, dtype=object).ravel()
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat],
                    dtype=object)


def _token_columns(tokens: np.ndarray, pad: str) -> Tuple[np.ndarray, np.ndarray, int]:
    """(row of each kept token, its column among the sorted distinct tokens, column count)."""
    rows, _ = np.indices(tokens.shape)
    text = _text(tokens)
    kept = text != pad
    if not kept.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    vocabulary, columns = np.unique(text[kept].astype(str), return_inverse=True)
    return rows.ravel()[kept], columns.ravel(), len(vocabulary)


def content_matrix(genres: np.ndarray, tags: np.ndarray,
                   pad: Union[bytes, str] = "") -> sp.csr_matrix:
    """[C, F] binary float64 rows: the genre tokens then the tag tokens of each track.

    `genres` [C, G] and `tags` [C, T] hold bytes or str; `pad` (as bytes or str) marks an empty
    slot. Columns are the distinct genre tokens, sorted, then the distinct tag tokens, sorted.
    A token repeated in a row is still a 1.
    """
    genres, tags = np.asarray(genres, dtype=object), np.asarray(tags, dtype=object)
    if genres.ndim != 2 or tags.ndim != 2 or len(genres) != len(tags):
        raise ValueError(f"need genres [C, G] and tags [C, T] for the same C tracks, got "
                         f"{genres.shape} and {tags.shape}")
    pad = pad.decode("utf-8") if isinstance(pad, bytes) else pad
    genre_rows, genre_columns, genre_count = _token_columns(genres, pad)
    tag_rows, tag_columns, tag_count = _token_columns(tags, pad)
    rows = np.concatenate([genre_rows, tag_rows])
    columns = np.concatenate([genre_columns, tag_columns + genre_count])
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, columns)),
                           shape=(len(genres), genre_count + tag_count))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a repeated token counted once
    return matrix


def _checked_lists(lists: np.ndarray, catalogue_size: int) -> np.ndarray:
    lists = np.asarray(lists)
    if lists.ndim != 2 or not np.issubdtype(lists.dtype, np.integer):
        raise ValueError(f"need lists as a [B, K] integer array, got {lists.dtype} "
                         f"{lists.shape}")
    if np.any(lists >= catalogue_size):
        raise ValueError(f"lists name rows beyond the catalogue of {catalogue_size} tracks "
                         f"(max {int(lists.max())})")
    return lists


def _unit_rows(content: sp.csr_matrix) -> sp.csr_matrix:
    """`content` with each nonzero row scaled to unit length (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(content.multiply(content).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ content)


def _mean_pair_distance(lists: np.ndarray, unit: sp.csr_matrix,
                        has_content: np.ndarray) -> np.ndarray:
    first, second = np.triu_indices(lists.shape[1], k=1)
    slots = np.maximum(lists, 0)
    usable = (lists >= 0) & has_content[slots]
    kept = usable[:, first] & usable[:, second]
    list_of_pair, pair = np.nonzero(kept)
    left = unit[slots[list_of_pair, first[pair]]]
    right = unit[slots[list_of_pair, second[pair]]]
    cosine = np.asarray(left.multiply(right).sum(axis=1)).ravel()
    distance = np.bincount(list_of_pair, weights=1.0 - cosine, minlength=len(lists))
    pairs = kept.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, distance / pairs, np.nan)


def intra_list_diversity(lists: np.ndarray, content: sp.csr_matrix) -> np.ndarray:
    """[B] float64: each list's mean 1 - cosine over pairs of tracks with content (NaN if none).

    `lists` [B, K] are rows of `content` [C, F] (e.g. from `content_matrix`); negative entries
    are empty slots.
    """
    content = sp.csr_matrix(content, dtype=np.float64)
    lists = _checked_lists(lists, content.shape[0])
    unit = _unit_rows(content)
    has_content = np.diff(unit.indptr) > 0
    return np.concatenate(
        [_mean_pair_distance(lists[start:start + _BLOCK_LISTS], unit, has_content)
         for start in range(0, len(lists), _BLOCK_LISTS)] or [np.zeros(0)])


def self_information(play_counts: np.ndarray) -> np.ndarray:
    """[C] float64 bits: -log2((plays of i + 1) / (total plays + C)) from training play counts."""
    counts = np.asarray(play_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or np.any(counts < 0):
        raise ValueError(f"need a non-empty [C] array of non-negative play counts, got shape "
                         f"{counts.shape}, minimum {counts.min(initial=0.0)}")
    return -np.log2((counts + 1.0) / (counts.sum() + len(counts)))


def novelty(lists: np.ndarray, information: np.ndarray) -> np.ndarray:
    """[B] float64: the mean `information` (`self_information`) of each list's tracks (NaN if
    the list is empty)."""
    information = np.asarray(information, dtype=np.float64)
    lists = _checked_lists(lists, len(information))
    listed = lists >= 0
    total = np.where(listed, information[np.maximum(lists, 0)], 0.0).sum(axis=1)
    count = listed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
