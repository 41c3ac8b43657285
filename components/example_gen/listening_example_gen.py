"""ExampleGens for listening logs: plays (with history and a time split) and the catalogue.

Both are stock `FileBasedExampleGen` components (so span resolution, input fingerprints and
caching behave as in any TFX pipeline) with custom Beam executors:

* `PlaysExampleGen` reads every plays file, validates it against the catalogue, groups plays by
  user in time order to attach each play's `recent_track_ids` (the plays strictly before it),
  joins the played track's content features, and splits by time: plays on the last
  `eval_days` days form `eval`, everything before forms `train`. History is computed before the
  split, so eval examples see the user's training-period plays as history, as serving would.
* `CatalogueExampleGen` writes one example per catalogue track (candidate features only) into a
  single `catalogue` split: the Trainer's input channel for the retrieval index.
"""
import os
from typing import Any, Dict, Iterable, Iterator, List, Tuple

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import base_example_gen_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import features
from components.listening_data import sources

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
CATALOGUE_SPLIT = "catalogue"
SECONDS_PER_DAY = 86400


def _bytes(values: Iterable[str]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _ints(values: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Iterable[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _padded(values: List[str], length: int) -> List[str]:
    return (list(values) + [features.PAD_TOKEN] * length)[:length]


def candidate_features(track: sources.Track) -> Dict[str, tf.train.Feature]:
    """The candidate-side raw features of a track, as tf.Example features."""
    result = {
        features.TRACK_ID: _bytes([track.track_id]),
        features.ARTIST: _bytes([track.artist]),
        features.GENRES: _bytes(_padded(track.genres, features.MAX_GENRES)),
        features.TAGS: _bytes(_padded(track.tags, features.MAX_TAGS)),
    }
    for name, value in zip(features.AUDIO_DESCRIPTORS, track.audio):
        result[name] = _floats([value])
    return result


def play_example(play: sources.Play, history: List[str], track: sources.Track) -> bytes:
    """A serialized tf.Example of one play: query features, label track and its content."""
    feature_map = candidate_features(track)
    feature_map.update({
        features.USER_ID: _bytes([play.user_id]),
        features.RECENT_TRACK_IDS: _bytes(_padded(history, features.HISTORY_LENGTH)),
        features.TIMESTAMP: _ints([play.ts]),
        features.PLATFORM: _bytes([play.platform]),
        features.COUNTRY: _bytes([play.country]),
        features.MS_PLAYED: _ints([play.ms_played]),
        features.SKIPPED: _ints([play.skipped]),
        features.REASON_END: _bytes([play.reason_end]),
        features.WEIGHT: _floats([play.weight]),
    })
    example = tf.train.Example(features=tf.train.Features(feature=feature_map))
    return example.SerializeToString()


def user_examples(
    user_plays: Tuple[str, Iterable[sources.Play]],
    eval_start_ts: int,
    catalogue: Dict[str, sources.Track],
) -> Iterator[beam.pvalue.TaggedOutput]:
    """Tags each of one user's plays, with its history, as train or eval by time."""
    _, plays = user_plays
    ordered = sorted(plays, key=lambda p: p.ts)
    recent: List[str] = []  # most recent first
    for play in ordered:
        track = catalogue.get(play.track_id) or sources.Track(track_id=play.track_id)
        split = EVAL_SPLIT if play.ts >= eval_start_ts else TRAIN_SPLIT
        yield beam.pvalue.TaggedOutput(split, play_example(play, recent, track))
        recent.insert(0, play.track_id)
        del recent[features.HISTORY_LENGTH:]


def eval_start(latest_ts: int, eval_days: int) -> int:
    """First second of the eval period: the last `eval_days` UTC days up to `latest_ts`."""
    last_day_start = (latest_ts // SECONDS_PER_DAY) * SECONDS_PER_DAY
    return last_day_start - (eval_days - 1) * SECONDS_PER_DAY


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

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]
                               ) -> Dict[str, beam.pvalue.PCollection]:
        settings = listening_config(exec_properties)
        layout = settings["layout"]
        eval_days = int(settings["eval_days"])
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        play_files = _input_files(exec_properties)
        catalogue_file = os.path.join(input_base, sources.catalogue_pattern(input_base, layout))
        has_catalogue = os.path.basename(catalogue_file) != sources.INTERACTIONS_FILE

        catalogue = (
            pipeline
            | "CatalogueFile" >> beam.Create([catalogue_file])
            | "ReadCatalogue" >> beam.FlatMap(sources.read_catalogue_source)
            | "KeyTracks" >> beam.Map(lambda track: (track.track_id, track)))
        catalogue_ids = catalogue | "TrackIds" >> beam.Map(lambda kv: (kv[0], True))
        plays = (
            pipeline
            | "PlayFiles" >> beam.Create(play_files)
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadPlays" >> beam.FlatMap(
                sources.read_plays, layout,
                beam.pvalue.AsDict(catalogue_ids) if has_catalogue else None))
        eval_start_ts = (
            plays
            | "Timestamps" >> beam.Map(lambda play: play.ts)
            | "Latest" >> beam.CombineGlobally(max)
            | "EvalStart" >> beam.Map(eval_start, eval_days))
        splits = (
            plays
            | "KeyByUser" >> beam.Map(lambda play: (play.user_id, play))
            | "GroupByUser" >> beam.GroupByKey()
            | "ToExamples" >> beam.FlatMap(
                user_examples, beam.pvalue.AsSingleton(eval_start_ts),
                beam.pvalue.AsDict(catalogue)).with_outputs(TRAIN_SPLIT, EVAL_SPLIT))
        for split in (TRAIN_SPLIT, EVAL_SPLIT):
            (splits[split]
             | f"Count[{split}]" >> beam.combiners.Count.Globally()
             | f"CheckNotEmpty[{split}]" >> beam.Map(_check_split_not_empty, split,
                                                     eval_days, play_files))
        return {TRAIN_SPLIT: splits[TRAIN_SPLIT], EVAL_SPLIT: splits[EVAL_SPLIT]}


def _check_split_not_empty(count: int, split: str, eval_days: int, files: List[str]) -> None:
    if count == 0:
        raise sources.InputDataError(
            os.path.commonpath(files),
            f"the {split} split is empty: the plays must span more than eval_days="
            f"{eval_days} day(s), with plays both before and within the last {eval_days}")


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
        | "ReadCatalogue" >> beam.FlatMap(sources.read_catalogue_source)
        | "ToExample" >> beam.Map(lambda track: tf.train.Example(
            features=tf.train.Features(feature=candidate_features(track)))))


def plays_example_gen(data_dir: str, eval_days: int) -> FileBasedExampleGen:
    """The plays ExampleGen for a data folder (layout detected from its files)."""
    layout = sources.detect_layout(data_dir)
    return FileBasedExampleGen(
        input_base=data_dir,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="plays", pattern=sources.plays_pattern(layout))]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            # Split by time in PlaysExecutor; the buckets only declare the split names.
            example_gen_pb2.SplitConfig.Split(name=TRAIN_SPLIT, hash_buckets=1),
            example_gen_pb2.SplitConfig.Split(name=EVAL_SPLIT, hash_buckets=1),
        ])),
        custom_config=pack_config({"layout": layout, "eval_days": eval_days}),
        custom_executor_spec=executor_spec.BeamExecutorSpec(PlaysExecutor),
    ).with_id("PlaysExampleGen")


def catalogue_example_gen(data_dir: str) -> FileBasedExampleGen:
    """The catalogue ExampleGen for a data folder: one split, `catalogue`."""
    layout = sources.detect_layout(data_dir)
    return FileBasedExampleGen(
        input_base=data_dir,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
            name=CATALOGUE_SPLIT, pattern=sources.catalogue_pattern(data_dir, layout))]),
        output_config=example_gen_pb2.Output(),  # keep the input split; no train/eval hashing
        custom_executor_spec=executor_spec.BeamExecutorSpec(CatalogueExecutor),
    ).with_id("CatalogueExampleGen")
