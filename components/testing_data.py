"""Test helpers: hand-built raw rows and a tf.Transform run over them (model code), a
folder's files as bytes (data writers), and synthetic release days (tests and benches)."""
import os
import time
from typing import Dict, List, Sequence

import numpy as np
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from crossfade.components import features


def _padded(values: Sequence[str], length: int) -> List[bytes]:
    return [v.encode() for v in (list(values) + [features.PAD_TOKEN] * length)[:length]]


def raw_play(user: str, track: str, history: Sequence[str] = (), ts: int = 0,
             artist: str = "a", genres: Sequence[str] = ("rock",),
             tags: Sequence[str] = ("love",), tempo: float = 120.0,
             platform: str = "android") -> Dict[str, object]:
    """One raw play row in the RAW_FEATURE_SPEC layout (as tf.Transform's instance dicts)."""
    row = {
        features.USER_ID: user.encode(),
        features.TRACK_ID: track.encode(),
        features.RECENT_TRACK_IDS: _padded(history, features.HISTORY_LENGTH),
        features.TIMESTAMP: ts,
        features.PLATFORM: platform.encode(),
        features.COUNTRY: b"SE",
        features.MS_PLAYED: 200000,
        features.SKIPPED: 0,
        features.REASON_END: b"trackdone",
        features.WEIGHT: 1.0,
        features.ARTIST: artist.encode(),
        features.GENRES: _padded(genres, features.MAX_GENRES),
        features.TAGS: _padded(tags, features.MAX_TAGS),
    }
    for name in features.AUDIO_DESCRIPTORS:
        row[name] = tempo if name == "track_tempo" else 0.5
    return row


def analyze_and_transform(rows: List[Dict[str, object]], output_dir: str):
    """Runs preprocessing_fn over `rows`; returns (transformed rows, TFTransformOutput)."""
    from crossfade.components.transform import preprocessing
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(features.RAW_FEATURE_SPEC))
    with tft_beam.Context(temp_dir=os.path.join(output_dir, "tmp")):
        (transformed, _), transform_fn = ((rows, metadata)
                                          | tft_beam.AnalyzeAndTransformDataset(
                                              preprocessing.preprocessing_fn))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return transformed, tft.TFTransformOutput(output_dir)


def serialize(row: Dict[str, object]) -> bytes:
    """A raw row (see `raw_play`) as a serialized tf.Example."""
    import tensorflow as tf
    feature = {}
    for name, spec in features.RAW_FEATURE_SPEC.items():
        values = row[name] if isinstance(row[name], list) else [row[name]]
        if spec.dtype == tf.string:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif spec.dtype == tf.int64:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def file_tree(folder: str) -> Dict[str, bytes]:
    """Relative path -> bytes of every file under `folder`."""
    contents = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                contents[os.path.relpath(path, folder)] = handle.read()
    return contents


def synthetic_release_days(size: int, rng: np.random.Generator) -> np.ndarray:
    """[size] release days as a streaming catalogue has them: 2 % released in the last 28
    days, the rest spread over 20 years before, so the served model carries the recency
    bias over dated tracks (what the product ships)."""
    today = int(time.time()) // 86400
    days = today - rng.integers(28, 20 * 365, size)
    fresh = rng.random(size) < 0.02
    days[fresh] = today - rng.integers(0, 28, int(fresh.sum()))
    return days.astype(np.int64)
