"""Benchmark: the size of a crossfade SavedModel at the `large` preset's scale, by variable.

    python -m bench.model_size_bench [--users 100000] [--tracks 100000] [--output DIR]

Exports the real serving module (`crossfade.components.trainer.export.RecommenderModule`,
`export.save`, and the Trainer's warmup requests) with every user's stored history
(`user_history.latest_histories` over synthetic transformed plays, a full `HISTORY_LENGTH` row
per user, as a heavy user has) and prints the size on disk (total, `variables/`,
`saved_model.pb`, `assets/`, `assets.extra/`), the largest variables by bytes with what they
hold, and the stored history's share. (An export without histories stores an all-padding
table of the same shape, so it is no smaller.) Prints figures only; never fails on a size.

What is real and what is not:

* Vocabularies are real: tf.Transform's analysis (`preprocessing_fn`, through
  `tft_beam.AnalyzeDataset`) sees `--users` distinct user ids and `--tracks` distinct
  Spotify-style track URIs, in max(users, tracks) plays (user i % users, track i % tracks, a
  history of the 3 tracks before it), so the user table, the stored history table
  [users + 2, HISTORY_LENGTH] int32 and the track tables have the sizes of that scale.
  Artists are one per 8 tracks, as in the `large` preset; genres and tags are the simulator's.
* Weights are not: the towers are untrained and the catalogue embeddings random unit
  vectors. A checkpoint stores tensors uncompressed, so a numeric variable's bytes depend on
  its shape and dtype only; a string variable's depend on its strings' lengths, so ids,
  titles and artists have realistic lengths.
* `Hyperparameters()` defaults: `use_user_id` is on, so the query tower holds a
  [users + 2, id_embedding_dim] float32 user table.

Trade-off: the plays go to the analysis as Arrow record batches built with numpy, not as
`crossfade.components.testing_data.analyze_and_transform`'s per-row instance dicts. That
helper also transforms every row, which this bench does not need, and at 100,000 rows took
4.5 to 6 minutes and 2 GB on 2 busy cores. Over the same rows both routes write
byte-identical vocabularies (checked at 1,000 rows), so the sizes are the same.

Everything is written under a temporary folder, removed at the end, unless `--output` names
a folder to keep.
"""
import argparse
import os
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads, below

LARGE = "large"  # the simulator preset whose scale the defaults are
ROWS_PER_BATCH = 10_000  # Arrow record batches fed to the analysis
HISTORY_SEEN = 3  # history tracks per analysed play (the rest padding), as in serving_bench
TOP_VARIABLES = 12
DEFAULT_K, MAX_K = 10, 100
MB = 1e6
_BASE36 = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))
_BASE62 = np.array(list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))

# What a checkpoint tensor holds, by a fragment of its key or layer (first match wins).
MEANINGS = (
    ("user_histories", "stored history per user [users + 2, HISTORY_LENGTH]"),
    ("user_embedding", "query tower: user id table [users + 2, id_dim]"),
    ("track_embedding", "track id table, history side [tracks + 2, id_dim]"),
    ("platform_embedding", "query tower: platform table"),
    ("hour_embedding", "query tower: hour table"),
    ("weekday_embedding", "query tower: weekday table"),
    ("catalogue_embeddings", "catalogue: candidate embeddings [C, D]"),
    ("catalogue_ids", "catalogue: track URIs [C]"),
    ("catalogue_titles", "catalogue: titles [C]"),
    ("catalogue_artists", "catalogue: artist names [C]"),
    ("content_tokens", "catalogue: genre/tag tokens (list metrics)"),
    ("popularity_scores", "catalogue: cold-start scores [C]"),
    ("popularity_rank", "catalogue: most-popular rank [C]"),
    ("self_information", "catalogue: self-information (novelty) [C]"),
    ("hidden", "query tower: hidden dense layer"),
    ("projection", "query tower: output projection dense layer"),
    ("_CHECKPOINTABLE_OBJECT_GRAPH", "checkpoint object graph"),
)


def _random_ids(rng: np.random.Generator, count: int, length: int, alphabet: np.ndarray,
                prefix: str = "", first: Optional[np.ndarray] = None) -> np.ndarray:
    """`count` unique random ids (object array): a collision would shrink a vocabulary."""
    ids: np.ndarray = np.empty(0, dtype=object)
    while len(ids) < count:
        letters = alphabet[rng.integers(0, len(alphabet), (count - len(ids), length))]
        if first is not None:
            letters[:, 0] = first[rng.integers(0, len(first), len(letters))]
        drawn = np.array([prefix + "".join(row) for row in letters], dtype=object)
        ids = np.concatenate([ids, drawn])
        ids = ids[np.sort(np.unique(ids, return_index=True)[1])]
    return ids


def _names(rng: np.random.Generator, count: int, max_words: int) -> np.ndarray:
    """Display names of 1..max_words capitalised words, the simulator's kind of length."""
    from crossfade.components.listening_data.simulator.vocabulary import TAG_VOCABULARY
    words = np.array([tag.replace("-", " ").title() for tag in TAG_VOCABULARY], dtype=object)
    picks = words[rng.integers(0, len(words), (count, max_words))]
    lengths = rng.integers(1, max_words + 1, count)
    return np.array([" ".join(row[:n]) for row, n in zip(picks, lengths, strict=True)],
                    dtype=object)


def _token_lists(rng: np.random.Generator, count: int, vocabulary, width: int,
                 at_least: int) -> np.ndarray:
    """[count, width] distinct tokens per row (at_least..width of them), "" padding."""
    from crossfade.components import features
    pool = np.array(vocabulary, dtype=object)
    # The first `width` of a random partition: distinct tokens without a per-row loop.
    scores = rng.random((count, len(pool)), dtype=np.float32)
    drawn = pool[np.argpartition(scores, width - 1, axis=1)[:, :width]]
    used = rng.integers(at_least, width + 1, count)
    return np.where(np.arange(width)[None, :] < used[:, None], drawn, features.PAD_TOKEN)


class Catalogue(NamedTuple):
    """Per-track raw content, row-aligned with `ids`."""

    ids: np.ndarray
    titles: np.ndarray
    artists: np.ndarray
    genres: np.ndarray
    tags: np.ndarray


def make_catalogue(tracks: int, rng: np.random.Generator) -> Catalogue:
    """`tracks` tracks: Spotify-style URIs, titles, one artist per 8 tracks, genres, tags."""
    from crossfade.components import features
    from crossfade.components.listening_data.simulator.presets import PRESETS
    from crossfade.components.listening_data.simulator.vocabulary import GENRES, TAG_VOCABULARY
    large = PRESETS[LARGE]
    artist_count = max(1, tracks * large.num_artists // large.num_tracks)
    artist_names = _names(rng, artist_count, 3)
    artist_names = np.array([f"{name} {i}" for i, name in enumerate(artist_names)], dtype=object)
    return Catalogue(
        ids=_random_ids(rng, tracks, 22, _BASE62, prefix="spotify:track:"),
        titles=_names(rng, tracks, 4),
        artists=artist_names[rng.integers(0, artist_count, tracks)],
        genres=_token_lists(rng, tracks, GENRES, features.MAX_GENRES, 1),
        tags=_token_lists(rng, tracks, TAG_VOCABULARY, features.MAX_TAGS, 3))


def raw_columns(users: int, catalogue: Catalogue, rng: np.random.Generator
                ) -> Dict[str, np.ndarray]:
    """RAW_FEATURE_SPEC columns of max(users, tracks) plays: user i % users, track
    i % tracks, a history of the 3 tracks before it ("" padding), the track's content."""
    from crossfade.components import features
    from crossfade.components.listening_data.simulator.vocabulary import PLATFORMS
    tracks = len(catalogue.ids)
    rows = max(users, tracks)
    row = np.arange(rows)
    track = row % tracks
    history = np.full((rows, features.HISTORY_LENGTH), features.PAD_TOKEN, dtype=object)
    for back in range(1, HISTORY_SEEN + 1):
        history[:, back - 1] = catalogue.ids[(row - back) % tracks]
    columns = {
        features.USER_ID: _random_ids(rng, users, 12, _BASE36, first=_BASE36[10:])[row % users],
        features.TRACK_ID: catalogue.ids[track],
        features.RECENT_TRACK_IDS: history,
        features.TIMESTAMP: 1_709_251_200 + 60 * row,  # from 2024-03-01, the preset's start
        features.PLATFORM: np.array(PLATFORMS, dtype=object)[
            rng.integers(0, len(PLATFORMS), rows)],
        features.COUNTRY: np.full(rows, "SE", dtype=object),
        features.MS_PLAYED: rng.integers(30_000, 300_000, rows),
        features.SKIPPED: rng.integers(0, 2, rows),
        features.REASON_END: np.full(rows, "trackdone", dtype=object),
        features.WEIGHT: np.ones(rows, np.float32),
        features.ARTIST: catalogue.artists[track],
        features.GENRES: catalogue.genres[track],
        features.TAGS: catalogue.tags[track],
    }
    for name in features.AUDIO_DESCRIPTORS:
        columns[name] = rng.random(rows).astype(np.float32)
    return columns


def _record_batch(columns: Dict[str, np.ndarray], start: int, stop: int):
    """Rows [start, stop) in the Arrow layout TFXIO decodes tf.Examples to: every feature a
    list column, strings as binary."""
    import pyarrow as pa
    arrays = []
    for values in columns.values():
        values = values[start:stop]
        width = 1 if values.ndim == 1 else values.shape[1]
        flat = values.reshape(-1)
        flat = (pa.array(flat, type=pa.string()).cast(pa.binary()) if flat.dtype == object
                else pa.array(flat))
        offsets = pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32))
        arrays.append(pa.ListArray.from_arrays(offsets, flat))
    return pa.RecordBatch.from_arrays(arrays, list(columns))


def analyze(columns: Dict[str, np.ndarray], output_dir: str):
    """tf.Transform's analysis of `preprocessing_fn` over `columns`: its TFTransformOutput."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx_bsl.public import tfxio
    from tfx_bsl.tfxio import tensor_representation_util

    from crossfade.components import features
    from crossfade.components.transform import preprocessing
    rows = len(next(iter(columns.values())))
    batches = [_record_batch(columns, start, min(start + ROWS_PER_BATCH, rows))
               for start in range(0, rows, ROWS_PER_BATCH)]
    schema = schema_utils.schema_from_feature_spec(features.RAW_FEATURE_SPEC)
    adapter_config = tfxio.TensorAdapterConfig(
        batches[0].schema,
        tensor_representation_util.InferTensorRepresentationsFromSchema(schema))
    # The argv is this bench's, not Beam's: without options Beam would try to parse it.
    with beam.Pipeline(options=PipelineOptions([])) as pipeline, \
            tft_beam.Context(temp_dir=os.path.join(output_dir, "tmp")):
        data = pipeline | beam.Create(batches, reshuffle=False)
        transform_fn = (data, adapter_config) | tft_beam.AnalyzeDataset(
            preprocessing.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return tft.TFTransformOutput(output_dir)


def stored_histories(users: int, tracks: int, rng: np.random.Generator) -> np.ndarray:
    """The stored history table of `users` heavy users: every row a full HISTORY_LENGTH
    (one latest play each, whose own history is full)."""
    from crossfade.components import features
    from crossfade.components.trainer import user_history
    return user_history.latest_histories(
        user_index=np.arange(users), track_index=rng.integers(0, tracks, users),
        recent_indices=rng.integers(0, tracks, (users, features.HISTORY_LENGTH)),
        play_time=np.zeros(users, np.int64), users=users, padding_index=tracks + 1)


def catalogue_index(catalogue: Catalogue, embedding_dim: int, rng: np.random.Generator):
    """The served catalogue: every track, random unit embeddings, Zipf-like play counts,
    release days as `testing_data.synthetic_release_days` draws them."""
    from crossfade.components.testing_data import synthetic_release_days
    from crossfade.components.trainer.catalogue_index import CatalogueIndex
    embeddings = rng.standard_normal((len(catalogue.ids), embedding_dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return CatalogueIndex(
        ids=catalogue.ids, embeddings=embeddings,
        play_counts=rng.zipf(1.5, len(catalogue.ids)).clip(max=10 ** 6),
        titles=catalogue.titles, artists=catalogue.artists, genres=catalogue.genres,
        tags=catalogue.tags, release_days=synthetic_release_days(len(catalogue.ids), rng))


def export_variant(export_dir: str, two_tower, transform_output, index,
                   user_histories: np.ndarray, seed: int) -> None:
    """One SavedModel as the Trainer writes it: `export.save` plus its warmup requests."""
    from crossfade.components.trainer import export, train
    module = export.RecommenderModule(two_tower, transform_output, index,
                                      default_k=DEFAULT_K, max_k=MAX_K,
                                      user_histories=user_histories)
    export.save(module, export_dir)
    train.write_warmup_requests(export_dir, transform_output, seed)


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def disk_sizes(export_dir: str) -> Dict[str, int]:
    """Bytes on disk: the whole export and its parts."""
    from crossfade.serving import warmup
    pb = os.path.join(export_dir, "saved_model.pb")
    return {"total": _folder_bytes(export_dir),
            "variables/": _folder_bytes(os.path.join(export_dir, "variables")),
            "saved_model.pb": os.path.getsize(pb) if os.path.exists(pb) else 0,
            "assets/": _folder_bytes(os.path.join(export_dir, "assets")),
            f"{warmup.WARMUP_DIR}/": _folder_bytes(os.path.join(export_dir, warmup.WARMUP_DIR))}


QUERY_TOWER_LAYERS = ("user_embedding", "track_embedding", "hour_embedding", "weekday_embedding",
                      "platform_embedding", "hidden", "projection")


def query_tower_names(query_tower) -> Dict[str, str]:
    """Checkpoint key -> layer, for the query tower's variables.

    The SavedModel saves a Keras layer's weights as the list `variables/<i>` (the track table,
    shared with the unexported candidate tower, among them), so the keys name no layer.
    """
    layer_of = {id(weight): f"{attribute}.{weight.name.split('/')[-1].split(':')[0]}"
                for attribute in QUERY_TOWER_LAYERS
                if getattr(query_tower, attribute, None) is not None
                for weight in getattr(query_tower, attribute).weights}
    return {f"query_tower/variables/{i}/.ATTRIBUTES/VARIABLE_VALUE": layer_of[id(weight)]
            for i, weight in enumerate(query_tower.variables) if id(weight) in layer_of}


class Variable(NamedTuple):
    name: str
    layer: str  # the layer behind an index-named key ("" where the key says it)
    shape: List[int]
    dtype: str
    bytes: int


def variable_sizes(export_dir: str, layers: Dict[str, str]) -> List[Variable]:
    """Every checkpoint tensor, largest first; strings counted by their bytes."""
    import tensorflow as tf
    reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    found = []
    for name, shape in reader.get_variable_to_shape_map().items():
        dtype = dtypes[name]
        if dtype == tf.string:
            size = sum(len(value) for value in np.ravel(reader.get_tensor(name)))
        else:
            size = int(np.prod(shape, dtype=np.int64)) * dtype.size
        found.append(Variable(name, layers.get(name, ""), list(shape), dtype.name, size))
    return sorted(found, key=lambda variable: -variable.bytes)


def meaning(name: str) -> str:
    return next((text for fragment, text in MEANINGS if fragment in name), "")


def _short(variable: Variable) -> str:
    key = variable.name.replace("/.ATTRIBUTES/VARIABLE_VALUE", "")
    return f"{key} ({variable.layer})" if variable.layer else key


def print_export(label: str, sizes: Dict[str, int], variables: List[Variable]) -> None:
    print(f"\n{label}")
    for part, size in sizes.items():
        print(f"  {part:<22} {size / MB:>9.2f} MB")
    total = sum(variable.bytes for variable in variables)
    print(f"  checkpoint tensors: {len(variables)}, {total / MB:.2f} MB of values; "
          f"top {TOP_VARIABLES} by bytes:")
    header = f"    {'MB':>8} {'share':>6}  {'shape':<14} {'dtype':<8} {'variable':<52} meaning"
    print(header)
    for variable in variables[:TOP_VARIABLES]:
        shape = "x".join(str(dim) for dim in variable.shape) or "scalar"
        print(f"    {variable.bytes / MB:>8.2f} {variable.bytes / max(total, 1):>6.1%}  "
              f"{shape:<14} {variable.dtype:<8} {_short(variable):<52} "
              f"{meaning(variable.layer or variable.name)}")
    rest = variables[TOP_VARIABLES:]
    if rest:
        print(f"    {sum(v.bytes for v in rest) / MB:>8.2f}         the other {len(rest)}")


def print_history_share(sizes: Dict[str, int], variables: List[Variable]) -> None:
    for variable in variables:
        if "user_histories" in variable.name:
            print(f"\nStored history: {_short(variable)} {variable.bytes / MB:.2f} MB, "
                  f"{variable.bytes / max(sizes['total'], 1):.1%} of the export")


def _arguments() -> argparse.Namespace:
    from crossfade.components.listening_data.simulator.presets import PRESETS
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=PRESETS[LARGE].num_users)
    parser.add_argument("--tracks", type=int, default=PRESETS[LARGE].num_tracks)
    parser.add_argument("--output", help="folder to write to and keep (default: a temporary "
                        "one, removed at the end)")
    args = parser.parse_args()
    if args.users < 1 or args.tracks < 1:
        parser.error("--users and --tracks must be at least 1")
    return args


def run(users: int, tracks: int, work: str, seed: int = 0) -> None:
    """Analyses, exports under `work` and prints the sizes."""
    from crossfade.components import features
    from crossfade.components.trainer import model as model_lib
    from crossfade.components.trainer import train
    from crossfade.components.trainer.hyperparameters import Hyperparameters
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    catalogue = make_catalogue(tracks, rng)
    columns = raw_columns(users, catalogue, rng)
    built = time.perf_counter()
    transform_output = analyze(columns, os.path.join(work, "transform"))
    del columns
    analysed = time.perf_counter()
    sizes = train.vocabularies(transform_output)
    print(f"Analysed {max(users, tracks):,} plays in {analysed - built:.1f} s "
          f"(rows built in {built - started:.1f} s); vocabularies: {sizes}", flush=True)

    hp = Hyperparameters()
    index = catalogue_index(catalogue, hp.embedding_dim, rng)
    two_tower = model_lib.TwoTowerModel(
        sizes, hp, train.sampling_probabilities(
            transform_output, train.track_play_counts(transform_output)),
        catalogue_row=train.catalogue_rows(transform_output, index.ids),
        catalogue_release_days=index.release_days)
    histories = stored_histories(sizes.users, sizes.tracks, rng)
    export_dir = os.path.join(work, "model", "1")
    began = time.perf_counter()
    export_variant(export_dir, two_tower, transform_output, index, histories, hp.seed)
    disk = disk_sizes(export_dir)
    variables = variable_sizes(export_dir, query_tower_names(two_tower.query_tower))
    print(f"Exported in {time.perf_counter() - began:.1f} s", flush=True)

    print(f"\ncrossfade SavedModel size: {users:,} users, {tracks:,} tracks "
          f"(catalogue {len(index):,}), HISTORY_LENGTH {features.HISTORY_LENGTH}, "
          f"Hyperparameters() defaults (embedding_dim {hp.embedding_dim}, id_embedding_dim "
          f"{hp.id_embedding_dim}, use_user_id {hp.use_user_id}); untrained towers, random "
          f"catalogue embeddings; MB = 10^6 bytes")
    print_export("with stored history", disk, variables)
    print_history_share(disk, variables)
    print(f"\nTotal run time {time.perf_counter() - started:.1f} s")


def main() -> int:
    args = _arguments()
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        run(args.users, args.tracks, args.output)
        return 0
    with tempfile.TemporaryDirectory(prefix="crossfade-model-size-bench-") as work:
        run(args.users, args.tracks, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
