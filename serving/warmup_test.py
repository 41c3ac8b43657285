"""Warmup requests: the file TF Serving reads, and replaying it on a loaded version."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import prediction_log_pb2

from crossfade.serving import signatures, tensor_proto, warmup
from crossfade.serving.conftest import TOY_TRACKS
from crossfade.serving.servable import Servable


def _logs(path: str):
    return [prediction_log_pb2.PredictionLog.FromString(record)
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def test_the_file_holds_predict_logs_for_both_signatures(tmp_path):
    users = [f"u{i}" for i in range(3)]
    path = warmup.write_warmup_requests(str(tmp_path), users, [["a", "b"], [], ["c"]],
                                        ["a", "b"])
    assert path == os.path.join(str(tmp_path), "assets.extra", "tf_serving_warmup_requests")
    logs = _logs(path)
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    requests = [log.predict_log.request for log in logs]
    by_signature = {}
    for request in requests:
        by_signature.setdefault(request.model_spec.signature_name, []).append(request)
    assert len(by_signature[signatures.SERVING_DEFAULT]) == 3 + 1  # per user + one batch
    assert len(by_signature[signatures.SIMILAR_TRACKS]) == 2 + 1
    assert len(by_signature[signatures.RECOMMEND]) == 3  # no saved_model.pb: a new model
    blends = by_signature[signatures.BLEND]
    assert len(blends) == len(signatures.BLEND_STRATEGIES) + 1
    assert [d.size for d in blends[0].inputs["user_ids"].tensor_shape.dim] == [1, 2]
    # The batch: groups u0-u1 and u2 alone (three users), padded to two members.
    assert [d.size for d in blends[-1].inputs["user_ids"].tensor_shape.dim] == [3, 2]
    first = by_signature[signatures.SERVING_DEFAULT][0]
    assert set(first.inputs) == {"user_id", "recent_track_ids", "timestamp", "platform", "k"}
    assert first.inputs["k"].dtype == types_pb2.DT_INT32
    assert first.inputs["timestamp"].dtype == types_pb2.DT_INT64
    assert [d.size for d in first.inputs["recent_track_ids"].tensor_shape.dim] == \
        [1, signatures.RECENT_TRACKS_WIDTH]
    batch = by_signature[signatures.SERVING_DEFAULT][-1]
    assert list(batch.inputs["k"].int_val) == [warmup.LARGEST_K] * 3
    read = list(warmup.read_warmup_requests(str(tmp_path)))
    assert [name for name, _ in read] == [r.model_spec.signature_name for r in requests]


def test_the_number_of_records_stays_under_tf_servings_limit(tmp_path):
    users = [f"u{i}" for i in range(5000)]
    path = warmup.write_warmup_requests(str(tmp_path), users, [[]] * len(users),
                                        [f"t{i}" for i in range(5000)])
    blends = len(signatures.BLEND_STRATEGIES) + 1  # one per strategy, one batch
    assert len(_logs(path)) == 2 * (warmup.MAX_EACH + 1) + 3 + blends \
        <= warmup.TF_SERVING_MAX_RECORDS


def _recommend_requests(logs):
    return [{name: tensor_proto.to_ndarray(value)
             for name, value in log.predict_log.request.inputs.items()}
            for log in logs
            if log.predict_log.request.model_spec.signature_name == signatures.RECOMMEND]


def test_recommend_requests_exercise_the_controls_reproducibly():
    users = [f"u{i}" for i in range(10)]
    recent = [["r0", "r1"], []] + [[f"h{i}"] for i in range(2, 10)]
    logs = warmup.warmup_logs(users, recent, ["a", "b"])
    neutral, batch, largest = _recommend_requests(logs)
    assert neutral["user_id"].tolist() == [b"u0"] and neutral["k"].tolist() == [warmup.USUAL_K]
    assert signatures.non_neutral_controls(neutral) == []
    assert set(neutral) == set(signatures.recommend_controls_inputs(["u"]))
    for request, k in ((batch, warmup.USUAL_K), (largest, warmup.LARGEST_K)):
        assert request["user_id"].tolist() == [u.encode() for u in users[:warmup.BATCH_ROWS]]
        assert request["k"].tolist() == [k] * warmup.BATCH_ROWS
        np.testing.assert_allclose(sorted(set(request["diversity"].tolist())), [0.0, 0.3])
        np.testing.assert_allclose(sorted(set(request["explore"].tolist())), [0.0, 0.1])
        assert (request["diversity"] * request["explore"]).any()  # both at once in a row
        assert request["seed"].tolist() == [warmup.WARMUP_SEED + row
                                            for row in range(warmup.BATCH_ROWS)]
        assert all(request["seed"] != 0)  # 0 would derive a seed: not reproducible
        # each row excludes its most recent track, or one of the tracks without history
        assert request["exclude_track_ids"][:, 0].tolist() == [b"r0", b"b"] + [
            f"h{i}".encode() for i in range(2, warmup.BATCH_ROWS)]
    again = _recommend_requests(warmup.warmup_logs(users, recent, ["a", "b"]))
    for first, second in zip((neutral, batch, largest), again, strict=True):
        assert {n: v.tolist() for n, v in first.items()} == \
            {n: v.tolist() for n, v in second.items()}
    assert not _recommend_requests(warmup.warmup_logs(users, recent, ["a"],
                                                      include_recommend=False))


def test_recommend_requests_only_for_models_with_the_signature(toy_template, tmp_path):
    export_dir = str(tmp_path / "model")
    shutil.copytree(toy_template, export_dir)  # the toy model has no `recommend`
    assert not warmup.has_signature(export_dir, signatures.RECOMMEND)
    assert warmup.has_signature(export_dir, signatures.SERVING_DEFAULT)
    path = warmup.write_warmup_requests(export_dir, ["u1"], [[]], ["t"])
    assert not _recommend_requests(_logs(path))
    path = warmup.write_warmup_requests(export_dir, ["u1"], [[]], ["t"],
                                        include_recommend=True)  # asked for: written
    assert len(_recommend_requests(_logs(path))) == 3
    assert warmup.has_signature(str(tmp_path / "nothing-saved-yet"), signatures.RECOMMEND)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        warmup.write_warmup_requests(str(tmp_path), ["u1"], [], [])
    with pytest.raises(ValueError):
        warmup.write_warmup_requests(str(tmp_path), [], [], [])


def test_replay_runs_every_request(toy_template, tmp_path):
    export_dir = str(tmp_path / "model")
    shutil.copytree(toy_template, export_dir)
    warmup.write_warmup_requests(export_dir, ["u1", "u2"], [[TOY_TRACKS[1]], []],
                                 TOY_TRACKS[:4])
    servable = Servable.load("toy", 1, export_dir)
    assert warmup.replay(servable) == 2 + 1 + 4 + 1
    shutil.rmtree(os.path.join(export_dir, warmup.WARMUP_DIR))
    assert warmup.replay(servable) == 0  # no file: nothing to do


def _sample(data_dir: str, count: int):
    import csv
    import glob
    plays = sorted(glob.glob(os.path.join(data_dir, "plays", "span-*", "plays.csv")))[-1]
    history = {}
    with open(plays) as handle:
        for row in csv.DictReader(handle):
            history.setdefault(row["username"], []).insert(0, row["spotify_track_uri"])
    users = list(history)[:count]
    return users, [history[user][:10] for user in users]


def test_replay_on_a_pipeline_model(pushed_model, tmp_path):
    export_dir = str(tmp_path / "model")
    shutil.copytree(pushed_model.path, export_dir)
    users, recent = _sample(pushed_model.data_dir, 20)
    tracks = sorted({track for row in recent for track in row})[:20]
    path = warmup.write_warmup_requests(export_dir, users, recent, tracks)
    servable = Servable.load("crossfade", pushed_model.version, export_dir)
    with_recommend = signatures.RECOMMEND in servable.signature_defs
    blends = len(signatures.BLEND_STRATEGIES) + 1 if signatures.BLEND in \
        servable.signature_defs else 0
    assert len(_recommend_requests(_logs(path))) == (3 if with_recommend else 0)
    assert warmup.replay(servable) == len(users) + 1 + len(tracks) + 1 + \
        (3 if with_recommend else 0) + blends


def test_pushed_models_carry_warmup_requests(pushed_model):
    if not os.path.exists(warmup.warmup_path(pushed_model.path)):
        pytest.skip("the Trainer does not write warmup requests yet "
                    "(serving.warmup.write_warmup_requests after tf.saved_model.save)")
    assert _logs(warmup.warmup_path(pushed_model.path))
