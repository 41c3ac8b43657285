"""ExampleGens for listening logs: plays (with history and a split protocol) and the catalogue.

Both are stock `FileBasedExampleGen` components (so span resolution, input fingerprints and
caching behave as in any TFX pipeline) with custom Beam executors:

* `PlaysExampleGen` reads every plays file, validates it against the catalogue, groups plays
  into user shards and, per shard and column-wise, orders each user's plays, assigns each play
  to train, eval or test by the split protocol (components/example_gen/split_protocols.py:
  time, leave-last-out or random per user), attaches each play's `recent_track_ids`
  (components/example_gen/history.py) and joins the played track's content features. A user's
  plays all fall into one shard, so per-user protocols need no further shuffle. The folder's
  ``likes.csv``, if any, is read once, divided by the same user shards and applied per shard
  (components/example_gen/likes.py: liked training plays weigh `like_weight` times more, a
  liked track without a training play becomes an example of its own); `like_weight` 0
  leaves likes unread. Each shard writes its own file per split (`write_shard`), in place
  of TFX's per-example WriteSplit.
* `CatalogueExampleGen` writes one example per catalogue track (its candidate features and its
  display title, `features.CATALOGUE_FEATURE_SPEC`) into a single `catalogue` split: the
  Trainer's input channel for the retrieval index.

Reading applies `sources.read_plays_counted` with the run's `timestamp_policy` and the
executor's clock; the rows it drops (exact copies, out-of-range timestamps with `drop`) are
counted into `READ_COUNTS_FILE` and int custom properties (`play_checks.READ_COUNT_NAMES`) of the
output examples, which `crossfade status` shows, beside what the likes did
(`play_checks.LIKE_COUNT_NAMES`).

TFX fingerprints only the files the input pattern matches (the plays), so the plays
ExampleGen's configuration also carries the SHA-256 of ``catalogue.csv`` and ``likes.csv`` as
they were when the pipeline was built: editing either alone runs it again instead of reusing a
cached output built from the old file.
"""
import collections
import contextlib
import hashlib
import json
import os
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import tensorflow as tf
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

from crossfade.components import features
from crossfade.components.example_gen import history, split_protocols
from crossfade.components.example_gen import likes as likes_lib
from crossfade.components.listening_data import play_checks, sources
from crossfade.components.listening_data.layout import INTERACTIONS_FILE

CATALOGUE_SPLIT = "catalogue"
# Plays are grouped into user shards, each processed as columns: enough shards to spread work
# over many workers, few enough that per-shard overhead stays negligible.
NUM_USER_SHARDS = 32
READ_COUNTS_FILE = "read_counts.json"
COUNTS_TAG = "counts"
# A shard's plays are joined, encoded and written this many at a time: on `large` a shard is
# about 370,000 plays, whose serialized examples (40-track histories) and Arrow columns would
# otherwise be in a worker's memory all at once.
ENCODE_CHUNK = 50_000


def encode_examples(columns: Dict[str, np.ndarray]) -> List[bytes]:
    """Serialized tf.Examples from equal-length columns: 1-D -> one value, 2-D -> a list."""
    arrays, names = [], []
    for name, values in columns.items():
        values = np.asarray(values)
        width = 1 if values.ndim == 1 else values.shape[1]
        flat = pa.array(values.reshape(-1))
        if pa.types.is_string(flat.type):
            flat = flat.cast(pa.binary())
        offsets = pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32))
        arrays.append(pa.ListArray.from_arrays(offsets, flat))
        names.append(name)
    return example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(arrays, names))


def candidate_columns(catalogue: sources.Catalogue) -> Dict[str, np.ndarray]:
    """The candidate-side raw features of catalogue tracks, by feature name."""
    columns = {
        features.TRACK_ID: catalogue.track_id,
        features.ARTIST: catalogue.artist,
        features.GENRES: catalogue.genres,
        features.TAGS: catalogue.tags,
    }
    for index, name in enumerate(features.AUDIO_DESCRIPTORS):
        columns[name] = catalogue.audio[:, index]
    return columns


def catalogue_columns(catalogue: sources.Catalogue) -> Dict[str, np.ndarray]:
    """The features of a catalogue example: the candidate side, the display title and the
    release day."""
    return {**candidate_columns(catalogue), features.TITLE: catalogue.title,
            features.RELEASE_DAY: catalogue.release_day}


def user_shards(user_ids: np.ndarray) -> np.ndarray:
    """Shard of each user: a hash that is stable across processes and machines."""
    return pd.util.hash_array(user_ids.astype(object)) % NUM_USER_SHARDS


def sharded_plays(path: str, layout: str, known_tracks: Optional[np.ndarray],
                  timestamp_policy: str = play_checks.REJECT, now: Optional[int] = None
                  ) -> Iterator[Any]:
    """Reads one plays file and splits it by user shard; its read counts go to COUNTS_TAG."""
    plays, counts = sources.read_plays_counted(path, layout, known_tracks, timestamp_policy,
                                               now)
    yield beam.pvalue.TaggedOutput(COUNTS_TAG, counts)
    shards = user_shards(plays.user_id)
    for shard in np.unique(shards):
        yield int(shard), plays.take(shards == shard)


def sharded_likes(path: str, known_tracks: Optional[np.ndarray]) -> Iterator[Any]:
    """Reads ``likes.csv`` once: {user shard: its likes}, and the count read to COUNTS_TAG."""
    likes = sources.read_likes(path, known_tracks)
    yield beam.pvalue.TaggedOutput(COUNTS_TAG, {play_checks.LIKES_READ: len(likes)})
    shards = user_shards(likes.user_id)
    yield {int(shard): likes.take(shards == shard) for shard in np.unique(shards)}


def shard_examples(shard_chunks: Tuple[int, Iterable[sources.Plays]],
                   periods: Tuple[int, int], catalogue: sources.Catalogue,
                   protocol: split_protocols.SplitProtocol,
                   likes_by_shard: Optional[Dict[int, sources.Likes]] = None,
                   like_weight: float = 0.0
                   ) -> Tuple[Iterator[Tuple[str, List[bytes]]], Dict[str, int]]:
    """(the serialized examples of one user shard, what the shard's likes did).

    The examples come as (split name, examples) pieces of at most `ENCODE_CHUNK` plays, in
    play order within each split, encoded as the iterator is read. `periods` is (eval start,
    test start) of the time protocol; other protocols ignore it.
    """
    shard, chunks = shard_chunks
    plays = sources.Plays.concat(list(chunks))
    # By user, then time; ties broken by track so output does not depend on file order.
    plays = plays.take(np.lexsort((plays.track_id, plays.ts, plays.user_id)))
    labels = _labels(plays, periods, protocol)
    if protocol.sequential:
        recent = history.recent_tracks(plays.user_id, plays.track_id, features.HISTORY_LENGTH)
    else:
        recent = history.sampled_train_tracks(plays.user_id, plays.track_id, labels,
                                              features.HISTORY_LENGTH, protocol.seed)
    like_counts: Dict[str, int] = {}
    shard_likes = (likes_by_shard or {}).get(shard)  # only shards with likes have an entry
    if shard_likes is not None:
        liked = likes_lib.apply(plays, labels, recent, shard_likes, like_weight, protocol,
                                periods)
        plays, labels, recent, like_counts = liked.plays, liked.labels, liked.recent, \
            liked.counts
    rows = pd.Index(catalogue.track_id).get_indexer(plays.track_id)
    if (rows < 0).any():  # reading checks coverage; this guards the join itself
        raise ValueError(f"tracks missing from the catalogue: {plays.track_id[rows < 0][:5]}")
    play_columns = {
        features.USER_ID: plays.user_id,
        features.RECENT_TRACK_IDS: recent,
        features.TIMESTAMP: plays.ts,
        features.PLATFORM: plays.platform,
        features.COUNTRY: plays.country,
        features.MS_PLAYED: plays.ms_played,
        features.SKIPPED: plays.skipped,
        features.REASON_END: plays.reason_end,
        features.WEIGHT: plays.weight,
    }
    return _encoded_pieces(play_columns, rows, labels, catalogue), like_counts


def _encoded_pieces(play_columns: Dict[str, np.ndarray], rows: np.ndarray,
                    labels: np.ndarray, catalogue: sources.Catalogue
                    ) -> Iterator[Tuple[str, List[bytes]]]:
    """(split name, serialized examples) per `ENCODE_CHUNK` plays: each play's columns joined
    with its catalogue row's candidate features (`rows`), split by `labels`."""
    for start in range(0, len(labels), ENCODE_CHUNK):
        part = slice(start, start + ENCODE_CHUNK)
        columns = candidate_columns(catalogue.take(rows[part]))
        columns.update({name: values[part] for name, values in play_columns.items()})
        examples = encode_examples(columns)
        part_labels = labels[part]
        for label in np.unique(part_labels):
            yield split_protocols.SPLIT_NAMES[label], [
                examples[row] for row in np.flatnonzero(part_labels == label)]


def write_shard(shard_chunks: Tuple[int, Iterable[sources.Plays]],
                split_uris: Dict[str, str], *args: Any) -> Iterator[Any]:
    """Writes one user shard's examples (`shard_examples(shard_chunks, *args)`) as one gzipped
    TFRecord file per split, named after the shard; yields {split: examples written} and the
    likes' counts to COUNTS_TAG.

    Written from inside the DoFn, as StreamQualifier writes its output files: TFX's
    WriteSplit would carry every example through Beam one element at a time and Reshuffle
    them all (half of this component's time on the default data), and 32 files per split
    are 32 elements for the next Beam components to spread over workers. A retried bundle
    rewrites the same files. The examples are written as they are encoded, `ENCODE_CHUNK`
    plays at a time, so a worker never holds a whole shard's serialized examples.
    """
    pieces, like_counts = shard_examples(shard_chunks, *args)
    shard = shard_chunks[0]
    written: Dict[str, int] = {}
    with contextlib.ExitStack() as open_files:
        writers: Dict[str, tf.io.TFRecordWriter] = {}
        for split, examples in pieces:
            if split not in writers:
                path = os.path.join(split_uris[split], f"{write_split.DEFAULT_TF_RECORD_FILE_NAME}"
                                    f"-{shard:05d}-of-{NUM_USER_SHARDS:05d}.gz")
                writers[split] = open_files.enter_context(
                    tf.io.TFRecordWriter(path, options="GZIP"))
            for example in examples:
                writers[split].write(example)
            written[split] = written.get(split, 0) + len(examples)
    if like_counts:
        yield beam.pvalue.TaggedOutput(COUNTS_TAG, like_counts)
    yield written


def _labels(plays: sources.Plays, periods: Tuple[int, int],
            protocol: split_protocols.SplitProtocol) -> np.ndarray:
    """Split label per play (plays sorted by user, then time); plays of cold items: test."""
    if protocol.name == split_protocols.TIME:
        labels = split_protocols.time_labels(plays.ts, *periods)
    elif protocol.name == split_protocols.LEAVE_LAST_OUT:
        labels = split_protocols.leave_last_out_labels(plays.user_id)
    else:
        labels = split_protocols.random_labels(plays.user_id, protocol.ratios, protocol.seed)
    cold = split_protocols.cold_item_rows(plays.track_id, protocol.cold_items, protocol.seed)
    return np.where(cold, split_protocols.TEST, labels)


def listening_config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    """The executor settings packed into the ExampleGen's CustomConfig (see `pack_config`)."""
    custom_config = example_gen_pb2.CustomConfig()
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if isinstance(raw, str):
        proto_utils.json_to_proto(raw, custom_config)
    elif raw is not None:
        custom_config.CopyFrom(raw)
    settings = struct_pb2.Struct()
    custom_config.custom_config.Unpack(settings)
    return json_format.MessageToDict(settings)


def pack_config(settings: Dict[str, Any]) -> example_gen_pb2.CustomConfig:
    """Packs executor settings into an ExampleGen CustomConfig (a Struct inside an Any)."""
    packed = any_pb2.Any()
    packed.Pack(json_format.ParseDict(settings, struct_pb2.Struct()))
    return example_gen_pb2.CustomConfig(custom_config=packed)


def _sum_counts(counts: Iterable[Dict[str, int]]) -> Dict[str, int]:
    total = {name: 0 for name in play_checks.READ_COUNT_NAMES + play_checks.LIKE_COUNT_NAMES}
    for count in counts:
        for name, value in count.items():
            total[name] += value
    return total


def _write_counts(counts: Dict[str, int], examples_uri: str) -> None:
    tf.io.gfile.makedirs(examples_uri)
    with tf.io.gfile.GFile(os.path.join(examples_uri, READ_COUNTS_FILE), "w") as handle:
        json.dump(counts, handle)


def _input_files(exec_properties: Dict[str, Any]) -> List[str]:
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                              input_config)
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                           input_config.splits[0].pattern)
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise sources.InputDataError(pattern, "no input file matches this pattern")
    return files


class PlaysExecutor(base_example_gen_executor.BaseExampleGenExecutor):
    """Builds train/eval play examples with history; see the module docstring."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("PlaysExecutor overrides GenerateExamplesByBeam")

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """The stock ExampleGen run (split names, payload and file format properties), then
        the read counts as custom properties. The shards write the split files themselves
        (`write_shard`), so `GenerateExamplesByBeam` hands WriteSplit no collections."""
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        self._examples = examples
        super().Do(input_dict, output_dict, exec_properties)
        with tf.io.gfile.GFile(os.path.join(examples.uri, READ_COUNTS_FILE)) as handle:
            for name, value in json.load(handle).items():
                examples.set_int_custom_property(name, int(value))

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]
                               ) -> Dict[str, beam.pvalue.PCollection]:
        settings = listening_config(exec_properties)
        layout = settings["layout"]
        protocol = split_protocols.SplitProtocol.from_dict(settings["split"])
        split_names = protocol.split_names()
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        play_files = _input_files(exec_properties)
        catalogue_file = os.path.join(input_base, sources.catalogue_pattern(input_base, layout))
        has_catalogue = os.path.basename(catalogue_file) != INTERACTIONS_FILE

        catalogue = (
            pipeline
            | "CatalogueFile" >> beam.Create([catalogue_file])
            | "ReadCatalogue" >> beam.Map(sources.read_catalogue_source))
        known_tracks = (beam.pvalue.AsSingleton(
            catalogue | "TrackIds" >> beam.Map(lambda c: c.track_id))
            if has_catalogue else None)
        read = (
            pipeline
            | "PlayFiles" >> beam.Create(play_files)
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadPlays" >> beam.FlatMap(
                sharded_plays, layout, known_tracks,
                settings.get("timestamp_policy", play_checks.REJECT),
                int(time.time())).with_outputs(COUNTS_TAG, main="shards"))
        shards = read.shards
        like_weight = float(settings.get("like_weight", 0.0))
        likes_file = sources.likes_path(input_base, layout) if like_weight > 0 else None
        likes = (
            pipeline
            | "LikesFile" >> beam.Create([likes_file] if likes_file else [])
            | "ReadLikes" >> beam.FlatMap(sharded_likes, known_tracks).with_outputs(
                COUNTS_TAG, main="likes"))
        periods = (
            shards
            | "LatestPerChunk" >> beam.Map(lambda shard_plays: int(shard_plays[1].ts.max()))
            | "Latest" >> beam.CombineGlobally(max)
            | "Periods" >> beam.Map(split_protocols.period_starts, protocol.eval_days,
                                    protocol.test_days))
        split_uris = {split: artifact_utils.get_split_uri([self._examples], split)
                      for split in split_names}
        for uri in split_uris.values():
            tf.io.gfile.makedirs(uri)
        written = (
            shards
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.FlatMap(
                write_shard, split_uris, beam.pvalue.AsSingleton(periods),
                beam.pvalue.AsSingleton(catalogue), protocol,
                beam.pvalue.AsSingleton(likes.likes, default_value={}), like_weight
            ).with_outputs(COUNTS_TAG, main="written"))
        ((read[COUNTS_TAG], likes[COUNTS_TAG], written[COUNTS_TAG])
         | "AllCounts" >> beam.Flatten()
         | "SumCounts" >> beam.CombineGlobally(_sum_counts)
         | "WriteCounts" >> beam.Map(_write_counts, self._examples.uri))
        (written.written
         | "SumWritten" >> beam.CombineGlobally(_sum_written)
         | "CheckNotEmpty" >> beam.Map(_check_splits_not_empty, split_names, protocol,
                                       play_files))
        return {}


def _sum_written(counts: Iterable[Dict[str, int]]) -> Dict[str, int]:
    return sum(map(collections.Counter, counts), collections.Counter())


def _check_splits_not_empty(written: Dict[str, int], split_names: List[str],
                            protocol: split_protocols.SplitProtocol, files: List[str]) -> None:
    for split in split_names:
        _check_split_not_empty(written.get(split, 0), split, protocol, files)


def _check_split_not_empty(count: int, split: str, protocol: split_protocols.SplitProtocol,
                           files: List[str]) -> None:
    if count > 0:
        return
    if protocol.name == split_protocols.TIME:
        days = protocol.eval_days + protocol.test_days
        reason = (f"the plays must span more than {days} day(s) (eval_days="
                  f"{protocol.eval_days}, test_days={protocol.test_days}), with plays both "
                  f"before and within the last {days}")
    else:
        reason = (f"no user has enough plays for the '{protocol.name}' protocol to hold "
                  f"any out (it needs at least 3 plays per user)")
    raise sources.InputDataError(os.path.commonpath(files),
                                 f"the {split} split is empty: {reason}")


class CatalogueExecutor(base_example_gen_executor.BaseExampleGenExecutor):
    """Writes one candidate-feature example per catalogue track."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _catalogue_to_examples


@beam.ptransform_fn
def _catalogue_to_examples(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                           split_pattern: str) -> beam.pvalue.PCollection:
    path = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                        split_pattern)
    return (
        pipeline
        | "CatalogueFile" >> beam.Create([path])
        | "ReadCatalogue" >> beam.Map(sources.read_catalogue_source)
        | "ToExamples" >> beam.FlatMap(lambda catalogue: encode_examples(
            catalogue_columns(catalogue))))


def _side_file_digests(data_dir: str, layout: str, with_likes: bool) -> Dict[str, str]:
    """SHA-256 of the files the plays ExampleGen reads beside its input pattern."""
    catalogue = sources.catalogue_pattern(data_dir, layout)
    paths = [os.path.join(data_dir, catalogue) if catalogue != INTERACTIONS_FILE else None,
             sources.likes_path(data_dir, layout) if with_likes else None]
    digests = {}
    for path in filter(None, paths):
        digest = hashlib.sha256()
        with tf.io.gfile.GFile(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[os.path.basename(path)] = digest.hexdigest()
    return digests


def plays_example_gen(data_dir: str, protocol: split_protocols.SplitProtocol,
                      code_version: str = "",
                      timestamp_policy: str = play_checks.REJECT,
                      like_weight: float = 0.0) -> FileBasedExampleGen:
    """The plays ExampleGen for a data folder (layout detected from its files).

    `timestamp_policy` (play_checks.REJECT or DROP) decides what happens to implausibly dated
    plays (components/listening_data/play_checks.py). An `auto` protocol is resolved here
    from the data (time with timestamps, random without), so the protocol actually used is
    recorded in the component's configuration. `like_weight` > 0 applies the folder's
    ``likes.csv`` (module docstring); 0 leaves it unread.
    """
    play_checks.check_timestamp_policy(timestamp_policy)
    layout = sources.detect_layout(data_dir)
    protocol = protocol.resolve(sources.has_timestamps(data_dir, layout))
    return FileBasedExampleGen(
        input_base=data_dir,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="plays", pattern=sources.plays_pattern(layout))]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            # PlaysExecutor applies the protocol; the buckets only declare the split names.
            example_gen_pb2.SplitConfig.Split(name=split, hash_buckets=1)
            for split in protocol.split_names()])),
        custom_config=pack_config({"layout": layout, "split": protocol.to_dict(),
                                   "timestamp_policy": timestamp_policy,
                                   "like_weight": like_weight,
                                   "side_files": _side_file_digests(data_dir, layout,
                                                                    like_weight > 0),
                                   "code_version": code_version}),
        custom_executor_spec=executor_spec.BeamExecutorSpec(PlaysExecutor),
    ).with_id("PlaysExampleGen")


def catalogue_example_gen(data_dir: str, code_version: str = "") -> FileBasedExampleGen:
    """The catalogue ExampleGen for a data folder: one split, `catalogue`."""
    layout = sources.detect_layout(data_dir)
    return FileBasedExampleGen(
        input_base=data_dir,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
            name=CATALOGUE_SPLIT, pattern=sources.catalogue_pattern(data_dir, layout))]),
        output_config=example_gen_pb2.Output(),  # keep the input split; no train/eval hashing
        custom_config=pack_config({"code_version": code_version}),
        custom_executor_spec=executor_spec.BeamExecutorSpec(CatalogueExecutor),
    ).with_id("CatalogueExampleGen")
