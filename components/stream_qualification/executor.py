"""Beam executor of StreamQualifier: bot removal, play weighting, counts and the top chart.

Pure Apache Beam (no runner-specific code), so it runs on every Beam runner. Examples are
processed in batches, decoded to Arrow columns by tfx_bsl and re-encoded after filtering, so
the per-play work is vectorised. See rules.py for what the rules are.
"""
import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Set, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx_bsl.coders import example_coder

from components import features
from components.stream_qualification import rules as rules_lib

EXAMPLES_KEY = "examples"
QUALIFIED_EXAMPLES_KEY = "qualified_examples"
CHART_KEY = "chart"
RULES_KEY = "rules"
CHART_SIZE_KEY = "chart_size"
COUNTS_FILE = "qualification_counts.json"
BOTS_FILE = "bot_accounts.txt"  # one account id per line, for audit and evaluation
CHART_CSV = "top_chart.csv"
CHART_JSON = "top_chart.json"
TRAIN_SPLIT, EVAL_SPLIT = "train", "eval"
SECONDS_PER_DAY = 86400
COUNT_NAMES = ("plays_in", "streams", "short_plays", "skips", "unknown_duration",
               "bot_plays_removed", "examples_out")


class PlayBatch:
    """A batch of decoded plays: the Arrow record batch plus the columns the rules read."""

    def __init__(self, record_batch: pa.RecordBatch):
        self.record_batch = record_batch

        def column(name: str) -> np.ndarray:
            values = record_batch.column(record_batch.schema.get_field_index(name)).flatten()
            if pa.types.is_large_binary(values.type) or pa.types.is_binary(values.type):
                values = pc.cast(values, pa.large_string())
            return values.to_numpy(zero_copy_only=False)

        self.user_id = column(features.USER_ID)
        self.track_id = column(features.TRACK_ID)
        self.ts = column(features.TIMESTAMP)
        self.ms_played = column(features.MS_PLAYED)
        self.skipped = column(features.SKIPPED)
        self.reason_end = column(features.REASON_END)
        self.weight = column(features.WEIGHT)


def decode(records: List[bytes]) -> PlayBatch:
    return PlayBatch(example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records))


def account_activity(batch: PlayBatch, rules: rules_lib.QualificationRules
                     ) -> Iterator[Tuple[str, np.ndarray]]:
    """(account, summed activity vector) for each account in the batch."""
    rows = rules_lib.activity(batch.ms_played, batch.skipped, batch.reason_end, batch.ts, rules)
    summed = pd.DataFrame(rows).groupby(batch.user_id).sum()
    for user, vector in zip(summed.index, summed.to_numpy()):
        yield user, vector


def account_tracks(batch: PlayBatch) -> Iterator[Tuple[str, str]]:
    """Distinct (account, track) pairs of the batch."""
    pairs = pd.DataFrame({"user": batch.user_id, "track": batch.track_id}).drop_duplicates()
    return zip(pairs["user"], pairs["track"])


def find_bot(account: Tuple[str, Dict[str, Iterable[Any]]],
             rules: rules_lib.QualificationRules) -> Iterator[str]:
    user, grouped = account
    activity = np.sum(list(grouped["activity"]), axis=0)
    if rules_lib.is_bot(activity, int(sum(grouped["distinct_tracks"])), rules):
        yield user


def qualify(batch: PlayBatch, bots: Iterable[str], split: str,
            rules: rules_lib.QualificationRules) -> Iterator[beam.pvalue.TaggedOutput]:
    """Serialized examples kept from the batch (re-weighted) and the batch's counts."""
    bot_set: Set[str] = set(bots)
    kinds = rules_lib.play_kinds(batch.ms_played, batch.skipped, batch.reason_end, rules)
    human = ~pd.Series(batch.user_id).isin(bot_set).to_numpy()
    keep = human & (kinds["stream"] if split == EVAL_SPLIT else True)
    weights = rules_lib.play_weights(kinds, batch.weight, rules)
    record_batch = _with_weights(batch.record_batch, weights).filter(pa.array(keep))
    for example in example_coder.RecordBatchToExamples(record_batch):
        yield beam.pvalue.TaggedOutput("examples", example)
    yield beam.pvalue.TaggedOutput("counts", {
        "plays_in": len(keep),
        "streams": int(np.sum(kinds["stream"] & human)),
        "short_plays": int(np.sum(kinds["short"] & human)),
        "skips": int(np.sum(kinds["skip"] & human)),
        "unknown_duration": int(np.sum(kinds["unknown_duration"] & human)),
        "bot_plays_removed": int(np.sum(~human)),
        "examples_out": int(np.sum(keep)),
    })


def _with_weights(record_batch: pa.RecordBatch, weights: np.ndarray) -> pa.RecordBatch:
    index = record_batch.schema.get_field_index(features.WEIGHT)
    offsets = pa.array(np.arange(len(weights) + 1, dtype=np.int64))
    column = pa.LargeListArray.from_arrays(offsets, pa.array(weights, pa.float32()))
    columns = list(record_batch.columns)
    columns[index] = column
    return pa.RecordBatch.from_arrays(columns, record_batch.schema.names)


def last_day_streams(batch: PlayBatch, last_day_start: int, bots: Iterable[str],
                     rules: rules_lib.QualificationRules) -> Iterator[Tuple[str, int]]:
    """(track, streams) of human streams on the last day, for the top chart."""
    bot_set = set(bots)
    kinds = rules_lib.play_kinds(batch.ms_played, batch.skipped, batch.reason_end, rules)
    counted = (kinds["stream"] & (batch.ts >= last_day_start)
               & ~pd.Series(batch.user_id).isin(bot_set).to_numpy())
    counts = pd.Series(batch.track_id[counted]).value_counts()
    return zip(counts.index, counts.to_numpy().tolist())


def _sum_counts(counts: Iterable[Dict[str, int]]) -> Dict[str, int]:
    total = {name: 0 for name in COUNT_NAMES}
    for count in counts:
        for name, value in count.items():
            total[name] += value
    return total


class Executor(base_beam_executor.BaseBeamExecutor):
    """StreamQualifier: examples -> qualified_examples (+ counts), chart."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        rules = rules_lib.QualificationRules(**json.loads(exec_properties[RULES_KEY]))
        chart_size = int(exec_properties[CHART_SIZE_KEY])
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        qualified = artifact_utils.get_single_instance(output_dict[QUALIFIED_EXAMPLES_KEY])
        chart = artifact_utils.get_single_instance(output_dict[CHART_KEY])
        splits = artifact_utils.decode_split_names(examples.split_names)
        qualified.split_names = artifact_utils.encode_split_names(splits)

        tf.io.gfile.makedirs(qualified.uri)
        with self._make_beam_pipeline() as pipeline:
            batches = {
                split: (pipeline
                        | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
                            os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
                        | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=1024,
                                                                  max_batch_size=16384)
                        | f"Decode[{split}]" >> beam.Map(decode))
                for split in splits}
            every_batch = list(batches.values()) | "AllPlays" >> beam.Flatten()
            activity = (every_batch
                        | "Activity" >> beam.FlatMap(account_activity, rules)
                        | "SumActivity" >> beam.CombinePerKey(
                            lambda vectors: np.sum(list(vectors), axis=0)))
            distinct_tracks = (every_batch
                               | "AccountTracks" >> beam.FlatMap(account_tracks)
                               | "DistinctPairs" >> beam.Distinct()
                               | "PerAccount" >> beam.Map(lambda pair: (pair[0], 1))
                               | "CountTracks" >> beam.CombinePerKey(sum))
            bots = ({"activity": activity, "distinct_tracks": distinct_tracks}
                    | "JoinAccounts" >> beam.CoGroupByKey()
                    | "FindBots" >> beam.FlatMap(find_bot, rules))
            bot_list = beam.pvalue.AsList(bots)
            _ = bots | "WriteBots" >> beam.io.WriteToText(
                os.path.join(qualified.uri, BOTS_FILE), shard_name_template="")

            counts = []
            for split, split_batches in batches.items():
                outputs = (split_batches
                           | f"Qualify[{split}]" >> beam.FlatMap(
                               qualify, bot_list, split, rules).with_outputs(
                                   "examples", "counts"))
                _ = (outputs["examples"]
                     | f"Write[{split}]" >> write_split.WriteSplit(
                         artifact_utils.get_split_uri([qualified], split),
                         example_gen_pb2.FORMAT_TFRECORDS_GZIP))
                counts.append(outputs["counts"])
            bot_count = bots | "CountBots" >> beam.combiners.Count.Globally()
            _ = (counts
                 | "AllCounts" >> beam.Flatten()
                 | "SumCounts" >> beam.CombineGlobally(_sum_counts)
                 | "AddBots" >> beam.Map(lambda total, bot_accounts: {
                     **total, "bot_accounts": bot_accounts},
                     beam.pvalue.AsSingleton(bot_count))
                 | "CountsJson" >> beam.Map(json.dumps, sort_keys=True)
                 | "WriteCounts" >> beam.io.WriteToText(
                     os.path.join(qualified.uri, COUNTS_FILE), shard_name_template=""))

            last_day_start = (every_batch
                              | "Latest" >> beam.Map(lambda batch: int(batch.ts.max()))
                              | "Max" >> beam.CombineGlobally(max)
                              | "LastDay" >> beam.Map(
                                  lambda ts: ts // SECONDS_PER_DAY * SECONDS_PER_DAY))
            _ = (every_batch
                 | "LastDayStreams" >> beam.FlatMap(
                     last_day_streams, beam.pvalue.AsSingleton(last_day_start), bot_list,
                     rules)
                 | "StreamsPerTrack" >> beam.CombinePerKey(sum)
                 | "Top" >> beam.combiners.Top.Of(chart_size, key=lambda kv: (kv[1], kv[0]))
                 | "WriteChart" >> beam.Map(write_chart, chart.uri,
                                            beam.pvalue.AsSingleton(last_day_start)))

        with tf.io.gfile.GFile(os.path.join(qualified.uri, COUNTS_FILE)) as handle:
            totals = json.load(handle)
        for name, value in totals.items():
            qualified.set_int_custom_property(name, int(value))
        examples_utils.set_payload_format(qualified, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            qualified, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        for name in ("span", "version"):
            if examples.has_property(name):
                setattr(qualified, name, getattr(examples, name))


def write_chart(top: List[Tuple[str, int]], chart_dir: str, last_day_start: int) -> None:
    """Writes the chart as CSV (rank,track_id,streams) and JSON, on any Beam filesystem."""
    tf.io.gfile.makedirs(chart_dir)
    rows = [{"rank": rank, "track_id": track, "streams": int(streams)}
            for rank, (track, streams) in enumerate(top, start=1)]
    with tf.io.gfile.GFile(os.path.join(chart_dir, CHART_CSV), "w") as handle:
        pd.DataFrame(rows, columns=["rank", "track_id", "streams"]).to_csv(handle, index=False)
    with tf.io.gfile.GFile(os.path.join(chart_dir, CHART_JSON), "w") as handle:
        json.dump({"day_start_unix": last_day_start, "tracks": rows}, handle, indent=1)
