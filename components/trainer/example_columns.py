"""Examples held in memory as one column per feature, and the shuffled batches drawn from them.

The Trainer parses and transforms its training plays once (`load_columns`) and each epoch
gathers a fresh permutation of rows (`shuffled_batches`), which keeps record parsing off the
training hot path. Memory is the contract (the `large` preset holds 9.7M training plays):

- Columns named in `narrow` (vocabulary indices and calendar fields: int64 in the transform
  graph, values far below 2**31) are held as int32, half the bytes; `rows` gives them back as
  int64, so every consumer sees the transform graph's dtypes. The 40-track history is most of
  an example: 160 bytes instead of 320.
- Each column grows in place (numpy's `resize`, a `realloc` that glibc serves by remapping
  pages for buffers this large) instead of keeping every parsed batch until one final
  concatenation, which held each column twice and left the batches' freed memory in the heap.
- The finished column is copied once into a TensorFlow variable, one column at a time, so
  loading peaks at every column plus the largest. A variable, not a tensor: tf.data copies
  every tensor a dataset function captures into the rewritten input pipeline's graph, a second
  copy of every column for as long as the process lives (measured on `large`: 2.6 GB more
  during and after training), while a variable is captured by its handle. (A tensor made from
  the numpy buffer without a copy, by DLPack, is copied the same way.)
"""
import dataclasses
from typing import Callable, Collection, Dict, FrozenSet, List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

READ_BATCH = 16384
_GROWTH = 1.25  # capacity added per growth: at most a quarter of a column unused


def record_files(patterns: List[str]) -> List[str]:
    """The files matching any of `patterns`, sorted; none is a FileNotFoundError."""
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {patterns}")
    return files


@dataclasses.dataclass(frozen=True)
class Columns:
    """`tensors`: one [N, ...] tensor or variable per feature; `narrowed`: the features held as
    int32 that are int64 to every reader of `rows`."""

    tensors: Dict[str, Union[tf.Tensor, tf.Variable]]
    narrowed: FrozenSet[str] = frozenset()

    @property
    def size(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    def rows(self, indices: tf.Tensor) -> Dict[str, tf.Tensor]:
        """The examples at `indices` ([n] row numbers), every feature in its original dtype."""
        return {name: tf.cast(tf.gather(values, indices), tf.int64) if name in self.narrowed
                else tf.gather(values, indices) for name, values in self.tensors.items()}

    def numpy(self, name: str) -> np.ndarray:
        """One column as numpy (a copy), in its original dtype."""
        values = self.tensors[name].numpy()
        return values.astype(np.int64) if name in self.narrowed else values


def _append(column: Optional[np.ndarray], size: int, batch: np.ndarray) -> np.ndarray:
    """`column` (rows [0, size) filled) with `batch` written after them, grown if needed."""
    if column is None:
        return batch.copy()  # an array of its own: `resize` refuses one that shares a buffer
    if size + len(batch) > len(column):
        capacity = int(len(column) * _GROWTH) + len(batch)
        column.resize((capacity,) + column.shape[1:], refcheck=False)
    column[size:size + len(batch)] = batch
    return column


def load_columns(patterns: List[str], feature_spec: Dict[str, tf.io.FixedLenFeature],
                 transform: Optional[Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]]
                 = None, narrow: Collection[str] = ()) -> Columns:
    """Parses every gzipped tf.Example in `patterns` into one column per feature, or per output
    of `transform` (e.g. a Transform graph's layer) applied to each parsed batch; the int64
    features named in `narrow` are held as int32 (their values must be below 2**31).

    Raises ValueError when the files hold no example.
    """
    narrow = frozenset(narrow)

    def parse(records: tf.Tensor) -> Dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(records, feature_spec)
        outputs = parsed if transform is None else transform(parsed)
        return {name: tf.cast(values, tf.int32) if name in narrow else values
                for name, values in outputs.items()}

    dataset = (tf.data.TFRecordDataset(record_files(patterns), compression_type="GZIP")
               .batch(READ_BATCH)
               .map(parse, num_parallel_calls=tf.data.AUTOTUNE))
    dataset = _without_autotune_model(dataset)  # AUTOTUNE then parses on one thread per core
    columns: Dict[str, np.ndarray] = {}
    size = 0
    for batch in dataset:
        for name, values in batch.items():
            columns[name] = _append(columns.get(name), size, values.numpy())
        size += int(next(iter(batch.values())).shape[0])
    if not size:
        raise ValueError(f"no examples in {patterns}")
    tensors = {}
    for name in list(columns):  # one column at a time: the copy peaks at one column's size
        column = columns.pop(name)
        column.resize((size,) + column.shape[1:], refcheck=False)
        tensors[name] = tf.Variable(column, trainable=False, name=name)
        del column
    return Columns(tensors, narrow & tensors.keys())


def shuffled_batches(columns: Columns, batch_size: int, epochs: int, seed: int
                     ) -> Tuple[tf.data.Dataset, int]:
    """Full batches of `columns`' rows, a new permutation each epoch; returns (dataset,
    steps per epoch). A batch is a dict of [batch_size, ...] tensors in the original dtypes."""
    size = columns.size
    batch_size = min(batch_size, size)
    steps = size // batch_size
    permutations = tf.data.Dataset.range(epochs).map(
        lambda epoch: tf.reshape(
            tf.random.experimental.stateless_shuffle(
                tf.range(size), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
            [:steps * batch_size], [steps, batch_size]))
    dataset = (permutations
               .flat_map(tf.data.Dataset.from_tensor_slices)
               .map(columns.rows)
               .prefetch(tf.data.AUTOTUNE))
    # The prefetch's own buffer autotuner still grows its buffer (a fixed buffer of 4 batches
    # measured 3-4 % slower).
    return _without_autotune_model(dataset), steps


def _without_autotune_model(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` without tf.data's autotuning model.

    The model's thread sleeps between optimisation rounds, and deleting a finished iterator
    waits for it to wake (a stack of the stalled process: RootDataset::Iterator's destructor on
    the autotune thread's LogicalThreadWrapper): 13 s at the end of `fit` in 4 of 7 Trainer
    runs of 31 s on the default data, up to 2.8 s at the end of one `load_columns` in three.
    Neither dataset has more to tune than a map's parallelism and a prefetch buffer.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
