"""StreamQualifier's Beam executor on small hand-built splits."""
import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from crossfade.components import features
from crossfade.components.example_gen.listening_example_gen import encode_examples
from crossfade.components.stream_qualification import executor
from crossfade.components.stream_qualification.component import StreamQualifier, TopChart

DAY = 86400


def _plays(rows):
    """rows: (user, track, ts, ms_played, skipped, reason_end)."""
    n = len(rows)

    def column(index, dtype):
        return np.array([row[index] for row in rows], dtype=dtype)

    return {
        features.USER_ID: column(0, object), features.TRACK_ID: column(1, object),
        features.RECENT_TRACK_IDS: np.full((n, features.HISTORY_LENGTH), "", dtype=object),
        features.TIMESTAMP: column(2, np.int64), features.PLATFORM: np.full(n, "ios", object),
        features.COUNTRY: np.full(n, "SE", object), features.MS_PLAYED: column(3, np.int64),
        features.SKIPPED: column(4, np.int64), features.REASON_END: column(5, object),
        features.WEIGHT: np.ones(n, np.float32), features.ARTIST: np.full(n, "a", object),
        features.GENRES: np.full((n, features.MAX_GENRES), "", dtype=object),
        features.TAGS: np.full((n, features.MAX_TAGS), "", dtype=object),
        **{name: np.zeros(n, np.float32) for name in features.AUDIO_DESCRIPTORS},
    }


def _write_split(examples, split, rows):
    path = os.path.join(artifact_utils.get_split_uri([examples], split), "data.gz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in (encode_examples(_plays(rows)) if rows else []):
            writer.write(record)


def _run(tmp_path, train_rows, eval_rows):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "in")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    _write_split(examples, "train", train_rows)
    _write_split(examples, "eval", eval_rows)
    qualified = standard_artifacts.Examples()
    qualified.uri = str(tmp_path / "out")
    chart = TopChart()
    chart.uri = str(tmp_path / "chart")
    component = StreamQualifier(examples=types.Channel(type=standard_artifacts.Examples),
                                chart_size=2)
    executor.Executor().Do(
        {executor.EXAMPLES_KEY: [examples]},
        {executor.QUALIFIED_EXAMPLES_KEY: [qualified], executor.CHART_KEY: [chart]},
        dict(component.exec_properties))
    return qualified, chart


def _read(artifact, split):
    uri = artifact_utils.get_split_uri([artifact], split)
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(uri, "*")),
                                      compression_type="GZIP")
    return [tf.io.parse_single_example(r, features.RAW_FEATURE_SPEC) for r in records]


def _bot_rows(user, day):
    # Loops two tracks round the clock, each play just over 30 s, never skipping.
    return [(user, f"farm{i % 2}", day * DAY + (i % 24) * 3600 + i, 30_400, 0, "trackdone")
            for i in range(120)]


def test_counts_weights_bots_and_chart(tmp_path):
    human_train = [
        ("h1", "t1", 100, 29_999, 0, "endplay"),     # short play
        ("h1", "t2", 200, 30_000, 0, "trackdone"),   # stream (exactly 30 s)
        ("h1", "t3", 300, 4_000, 1, "fwdbtn"),       # skip
        ("h2", "t2", 400, 180_000, 0, "trackdone"),  # stream
    ]
    human_eval = [
        ("h1", "t2", DAY + 10, 200_000, 0, "trackdone"),
        ("h2", "t2", DAY + 20, 200_000, 0, "trackdone"),
        ("h2", "t1", DAY + 30, 100_000, 0, "trackdone"),
        ("h2", "t3", DAY + 40, 2_000, 1, "fwdbtn"),   # a skip: not an eval target
    ]
    qualified, chart = _run(tmp_path, human_train + _bot_rows("bot", 0),
                            human_eval + _bot_rows("bot", 1)[:30])
    counts = {name: qualified.get_int_custom_property(name)
              for name in executor.COUNT_NAMES + ("bot_accounts",)}
    assert counts == {"plays_in": 8 + 150, "streams": 5, "short_plays": 1, "skips": 2,
                      "unknown_duration": 0, "bot_plays_removed": 150, "examples_out": 7,
                      "bot_accounts": 1}
    train = _read(qualified, "train")
    weights = {e[features.TRACK_ID].numpy().decode() + "@" + str(int(e[features.TIMESTAMP])):
               float(e[features.WEIGHT]) for e in train}
    assert weights == {"t1@100": 0.5, "t2@200": 1.0, "t3@300": pytest.approx(0.1),
                       "t2@400": 1.0}
    assert sorted(e[features.TRACK_ID].numpy() for e in _read(qualified, "eval")) == \
        [b"t1", b"t2", b"t2"]
    with open(os.path.join(qualified.uri, executor.BOTS_FILE)) as handle:
        assert handle.read().split() == ["bot"]
    with open(os.path.join(chart.uri, executor.CHART_JSON)) as handle:
        top = json.load(handle)["tracks"]
    # Last day's human streams: t2 twice, t1 once; the bot's farm tracks never chart.
    assert [(row["track_id"], row["streams"]) for row in top] == [("t2", 2), ("t1", 1)]


def test_an_empty_split_gives_zero_counts_not_an_error(tmp_path):
    qualified, _ = _run(tmp_path, [("h1", "t1", 100, 60_000, 0, "trackdone")], [])
    assert qualified.get_int_custom_property("plays_in") == 1
    assert _read(qualified, "eval") == []


def test_the_chart_ranks_by_streams_then_by_track_id_descending():
    streams = executor._sum_streams([collections.Counter({"t1": 2, "t3": 1}),
                                     collections.Counter({"t2": 2, "t4": 1})])
    assert executor._top(streams, 3) == [("t2", 2), ("t1", 2), ("t4", 1)]
    assert executor._top(executor._sum_streams([]), 3) == []
