"""A trained model's retrieval metrics on held-out plays, measured in process as the
Evaluator measures the exported model.

Every raw play in the files (gzipped tf.Examples as the StreamQualifier wrote its eval split,
read once per search by `read_plays`) goes, serialized, through the model's own
`evaluate_examples` signature
(`export.RecommenderModule`, built in memory and never saved: the ranking the Evaluator reads
from the SavedModel, with the stored histories and the cold-start ranking), and the played
tracks' ranks give Recall@10/50/100, NDCG@10 and the play count by
`retrieval_metrics.rank_metrics`, the Evaluator's own definitions: unweighted, every play.
"""
from typing import Dict, List

import numpy as np
import tensorflow as tf

from crossfade.components.evaluator import retrieval_metrics
from crossfade.components.trainer import export
from crossfade.components.trainer.example_columns import record_files

# Each call scores [batch, catalogue] floats: about 64 MB of them at most, whatever the
# catalogue's size (TFMA batches by example count only).
_SCORES_PER_CALL = 2 ** 24
_MAX_BATCH = 1024


def batch_size(catalogue_size: int) -> int:
    """Plays per `evaluate_examples` call for a catalogue of `catalogue_size` tracks."""
    return max(1, min(_MAX_BATCH, _SCORES_PER_CALL // max(catalogue_size, 1)))


def read_plays(patterns: List[str]) -> tf.Tensor:
    """The serialized plays in `patterns`' files, [plays] strings: read once per search, every
    trial scores them. None is a ValueError naming the patterns."""
    records = tf.data.TFRecordDataset(record_files(patterns), compression_type="GZIP")
    parts = list(records.batch(65536))
    if not parts:
        raise ValueError(f"no held-out plays in {patterns}")
    return tf.concat(parts, axis=0)


def held_out_metrics(module: export.RecommenderModule, plays: tf.Tensor) -> Dict[str, float]:
    """Recall@K, NDCG@10 and `eval_plays` of `module` on `plays` (`read_plays`)."""
    size = batch_size(module.catalogue_size)
    ranks = [module.evaluate_examples(plays[start:start + size])["label_rank"].numpy()
             for start in range(0, int(plays.shape[0]), size)]
    return retrieval_metrics.rank_metrics(np.concatenate(ranks))
