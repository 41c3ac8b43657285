"""Warmup requests shipped inside each SavedModel, replayed before a version takes traffic.

TF Serving reads `<version>/assets.extra/tf_serving_warmup_requests` — a TFRecord file of
`tensorflow.serving.PredictionLog` entries — and runs every request once while loading the
version, so the first real request does not pay for graph initialisation, table loading and
memory allocation. The local server replays the same file the same way (`replay`).

`write_warmup_requests` builds the file from representative values: one `serving_default`
request per user (with their recent tracks; k = 10, the usual request), one `similar_tracks`
request per track, and one small batch of each with k = 100 (the largest result, and a batch
shape as server-side batching produces). For a model with the `recommend` signature it adds
three `recommend` requests: the first user's with neutral controls (what a client without
controls sends), and the first `BATCH_ROWS` users as one batch at k = 10 and at k = 100 with
controls cycling through `CONTROL_PATTERN` (diversity 0.3 runs the MMR re-ranking, explore 0.1
the sampler), one exclusion per row (the user's most recent track, else one of the tracks) and
fixed nonzero seeds (`WARMUP_SEED` + row), so every replay computes the same answers. For a
model with the `blend` signature it adds one request per strategy for the first two users
(`BLEND_K` tracks, as a group playlist) and one batch of `BLEND_GROUPS` at k = 100 with
groups of two to five members. Whether the model has `recommend` or `blend` is read from the
`saved_model.pb` in the export folder (a model saved without them, such as
`crossfade.serving.toy_model`'s, gets none: a warmup record for a missing signature would
fail its load). TF Serving caps the file at 1000 records; at most
`MAX_EACH` users and tracks are used.
"""
import os
from typing import Iterator, List, Optional, Sequence, Tuple

from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from crossfade.serving import signatures, tensor_proto
from crossfade.serving.model_base_path import MODEL_NAME

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_EACH = 100
BATCH_ROWS = 8
USUAL_K = 10
LARGEST_K = 100  # the pipeline's max_k is at least 100 (pipeline/configs.py)
TF_SERVING_MAX_RECORDS = 1000
# (diversity, explore) of the controlled `recommend` warmup rows, cycled over the rows.
CONTROL_PATTERN = ((0.3, 0.0), (0.0, 0.1), (0.3, 0.1), (0.0, 0.0))
WARMUP_SEED = 1_000
BLEND_K = 20
BLEND_GROUPS = ((0, 2), (2, 5), (1, 4))  # [start, end) slices of the users


def warmup_path(export_dir: str) -> str:
    return os.path.join(export_dir, WARMUP_DIR, WARMUP_FILE)


def _log(signature_name: str, inputs, model_name: str) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto.from_ndarray(value))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


def _recommend_logs(users: List[str], recent: List[List[str]], tracks: List[str],
                    platform: List[str], model_name: str
                    ) -> List[prediction_log_pb2.PredictionLog]:
    logs = [_log(signatures.RECOMMEND, signatures.recommend_controls_inputs(
        users[:1], recent[:1], k=USUAL_K, platform=platform[:1]), model_name)]
    rows = range(min(BATCH_ROWS, len(users)))
    pattern = [CONTROL_PATTERN[row % len(CONTROL_PATTERN)] for row in rows]
    spare = [[track] for track in tracks] or [[]]
    exclude = [recent[row][:1] or spare[row % len(spare)] for row in rows]
    for k in (USUAL_K, LARGEST_K):
        logs.append(_log(signatures.RECOMMEND, signatures.recommend_controls_inputs(
            users[:len(rows)], recent[:len(rows)], k=k, platform=platform[:len(rows)],
            exclude=exclude, diversity=[diversity for diversity, _ in pattern],
            explore=[explore for _, explore in pattern],
            seed=[WARMUP_SEED + row for row in rows]), model_name))
    return logs


def _blend_logs(users: List[str], recent: List[List[str]], platform: List[str],
                model_name: str) -> List[prediction_log_pb2.PredictionLog]:
    pair = users[:2]
    logs = [_log(signatures.BLEND, signatures.blend_inputs(
        [pair], [recent[:len(pair)]], k=BLEND_K, strategy=strategy, platform=platform[:1]),
        model_name) for strategy in sorted(signatures.BLEND_STRATEGIES)]
    groups = [(start, min(end, len(users))) for start, end in BLEND_GROUPS
              if start < len(users)]
    strategies = sorted(signatures.BLEND_STRATEGIES)
    logs.append(_log(signatures.BLEND, signatures.blend_inputs(
        [users[start:end] for start, end in groups],
        [recent[start:end] for start, end in groups], k=LARGEST_K,
        strategy=[strategies[row % len(strategies)] for row in range(len(groups))],
        platform=[platform[start] for start, _ in groups]), model_name))
    return logs


def warmup_logs(user_ids: Sequence[str], recent_tracks: Sequence[Sequence[str]],
                track_ids: Sequence[str], platforms: Optional[Sequence[str]] = None,
                model_name: str = MODEL_NAME, include_recommend: bool = True,
                include_blend: bool = False) -> List[prediction_log_pb2.PredictionLog]:
    """The PredictionLogs `write_warmup_requests` writes; see the module docstring.
    `include_recommend`, `include_blend`: add those signatures' requests (when there is a
    user)."""
    if len(recent_tracks) != len(user_ids):
        raise ValueError(f"recent_tracks has {len(recent_tracks)} rows for "
                         f"{len(user_ids)} users")
    if platforms is not None and len(platforms) != len(user_ids):
        raise ValueError(f"platforms has {len(platforms)} rows for {len(user_ids)} users")
    users = list(user_ids)[:MAX_EACH]
    recent = [list(row) for row in recent_tracks][:MAX_EACH]
    platform = list(platforms)[:MAX_EACH] if platforms is not None else [""] * len(users)
    tracks = list(track_ids)[:MAX_EACH]
    logs = []
    for index, user in enumerate(users):
        logs.append(_log(signatures.SERVING_DEFAULT, signatures.recommend_inputs(
            [user], [recent[index]], k=USUAL_K, platform=[platform[index]]), model_name))
    if users:
        rows = slice(0, BATCH_ROWS)
        logs.append(_log(signatures.SERVING_DEFAULT, signatures.recommend_inputs(
            users[rows], recent[rows], k=LARGEST_K, platform=platform[rows]), model_name))
        if include_recommend:
            logs += _recommend_logs(users, recent, tracks, platform, model_name)
        if include_blend:
            logs += _blend_logs(users, recent, platform, model_name)
    for track in tracks:
        logs.append(_log(signatures.SIMILAR_TRACKS,
                         signatures.similar_tracks_inputs([track], k=USUAL_K), model_name))
    if tracks:
        logs.append(_log(signatures.SIMILAR_TRACKS, signatures.similar_tracks_inputs(
            tracks[:BATCH_ROWS], k=LARGEST_K), model_name))
    return logs


def has_signature(export_dir: str, signature_name: str) -> bool:
    """Whether the SavedModel in `export_dir` has the serving signature `signature_name`;
    True when there is no `saved_model.pb` yet (warmup written before the model: a new one)."""
    import tensorflow as tf
    if not tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        return True
    from crossfade.serving.servable import read_signature_defs
    return signature_name in read_signature_defs(export_dir)


def write_warmup_requests(export_dir: str, user_ids: List[str],
                          recent_tracks: List[List[str]], track_ids: List[str],
                          platforms: Optional[List[str]] = None,
                          include_recommend: Optional[bool] = None) -> str:
    """Writes `<export_dir>/assets.extra/tf_serving_warmup_requests`; returns its path.

    `user_ids[i]` with `recent_tracks[i]` (most recent first) and optionally `platforms[i]`
    form one recommend request; each of `track_ids` one similar-tracks request.
    `include_recommend` None: add the `recommend` requests when the model in `export_dir`
    has that signature (`has_signature`).
    """
    import tensorflow as tf
    if include_recommend is None:
        include_recommend = has_signature(export_dir, signatures.RECOMMEND)
    logs = warmup_logs(user_ids, recent_tracks, track_ids, platforms,
                       include_recommend=include_recommend,
                       include_blend=has_signature(export_dir, signatures.BLEND))
    if not logs:
        raise ValueError("no warmup requests: give at least one user or track")
    path = warmup_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir: str) -> Iterator[Tuple[str, dict]]:
    """(signature name, {input: ndarray}) of each Predict warmup record, in file order;
    nothing if the version has no warmup file."""
    path = warmup_path(export_dir)
    if not os.path.exists(path):
        return
    import tensorflow as tf
    for count, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
        if count >= TF_SERVING_MAX_RECORDS:
            raise ValueError(f"{path}: more than {TF_SERVING_MAX_RECORDS} warmup records")
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: record {count} is a {log.WhichOneof('log_type')}; "
                             "only predict_log warmup records are supported")
        request = log.predict_log.request
        yield request.model_spec.signature_name, {
            name: tensor_proto.to_ndarray(value) for name, value in request.inputs.items()}


def replay(servable) -> int:
    """Runs every warmup request of `servable`'s version once; returns how many. A failing
    request fails the load, as in TF Serving."""
    count = 0
    for signature_name, inputs in read_warmup_requests(servable.path):
        servable.run(signature_name, inputs)
        count += 1
    return count
