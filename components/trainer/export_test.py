"""The exported SavedModel's signatures, loaded back as TF Serving would load them."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.evaluator import list_metrics
from crossfade.components.testing_data import analyze_and_transform, raw_play, serialize
from crossfade.components.trainer import export, recency, served_index, train
from crossfade.components.trainer import model as model_lib
from crossfade.components.trainer.catalogue_index import CatalogueIndex
from crossfade.components.trainer.hyperparameters import Hyperparameters

CATALOGUE = ["t1", "t2", "t3", "t4", "t5"]  # t5 is never played
PLAYS = {"t1": 4, "t2": 2, "t3": 1, "t4": 1}
TITLES = ["One", "Two", "Three", "", "Five"]
ARTISTS = ["artist0", "artist1", "artist0", "artist1", "artist0"]
GENRES = [["rock", "", ""], ["rock", "pop", ""], ["jazz", "", ""], ["", "", ""],
          ["pop", "", ""]]
TAGS = [["love"] + [""] * 7, ["love"] + [""] * 7, ["night"] + [""] * 7, [""] * 8,
        ["rock"] + [""] * 7]  # t5's tag "rock" is not its genre "rock"
HP = Hyperparameters(embedding_dim=8, id_embedding_dim=8, content_embedding_dim=4,
                               hidden_units=16)


# Release days around the tests' request day (timestamp 1_700_000_000, UTC day 19675):
# t1 out that day, t2 five days before, t3 75 days before, t4 unknown, t5 the day after.
REQUEST_DAY = 1_700_000_000 // 86400
RELEASE_DAYS = [REQUEST_DAY, REQUEST_DAY - 5, REQUEST_DAY - 75, features.NO_RELEASE_DAY,
                REQUEST_DAY + 1]


def _export(tmp_path_factory, release_days=None, recency_bias=None, indexed=False,
            unplayed=0, hp=HP):
    """`_module`'s model as TF Serving loads it."""
    module = _module(tmp_path_factory, release_days, recency_bias, indexed, unplayed, hp)
    export_dir = str(tmp_path_factory.mktemp("model"))
    export.save(module, export_dir)
    return tf.saved_model.load(export_dir)


def _module(tmp_path_factory, release_days=None, recency_bias=None, indexed=False,
            unplayed=0, hp=HP):
    """The test catalogue's model; with `recency_bias` ([2,
    NUM_BUCKETS]) the model has a recency bias with those values over `release_days`;
    `indexed`: it ranks through a partitioned index (3 partitions: 2 of the played tracks,
    1 of t5; so small a catalogue fills a pool only with every partition probed, so the
    answers must be the exact model's); `unplayed`: that many more tracks ("x0", ...) with
    random embeddings and no plays, the index then probing every partition."""
    # Fixed weights: the statistical tests (propensities) then pass or fail for good.
    tf.keras.utils.set_random_seed(0)
    rows = []
    for index, (track, count) in enumerate(PLAYS.items()):
        for play in range(count):
            rows.append(raw_play(f"u{play}", track, history=["t1"], ts=3600 * (index + play),
                                 artist=f"artist{index % 2}", genres=[f"g{index}"]))
    _, transform_output = analyze_and_transform(rows, str(tmp_path_factory.mktemp("tft")))
    counts = train.track_play_counts(transform_output)
    dated = recency_bias is not None
    two_tower = model_lib.TwoTowerModel(
        train.vocabularies(transform_output), hp,
        train.sampling_probabilities(transform_output, counts),
        catalogue_row=train.catalogue_rows(transform_output, np.array(CATALOGUE, object)),
        catalogue_release_days=np.array(release_days) if dated else None)
    if dated:
        two_tower.recency_bias.build(None)
        two_tower.recency_bias.bias.assign(recency_bias)
    raw = features.default_raw_values(tf.constant(len(CATALOGUE)))
    raw[features.TRACK_ID] = tf.constant(CATALOGUE)
    raw[features.ARTIST] = tf.constant(ARTISTS)
    embeddings = two_tower.candidate_tower(
        transform_output.transform_features_layer()(raw)).numpy()
    extra = np.random.default_rng(1).normal(size=(unplayed, embeddings.shape[1]))
    embeddings = np.concatenate([embeddings, extra / np.linalg.norm(extra, axis=1,
                                                                    keepdims=True)])
    more = [""] * unplayed
    index = CatalogueIndex(
        ids=np.array(CATALOGUE + [f"x{i}" for i in range(unplayed)], dtype=object),
        embeddings=embeddings.astype(np.float32),
        play_counts=np.array([counts.get(t.encode(), 0) for t in CATALOGUE] + [0] * unplayed),
        titles=np.array(TITLES + more, dtype=object),
        artists=np.array(ARTISTS + more, dtype=object),
        genres=np.array(GENRES + [[""] * 3] * unplayed, dtype=object),
        tags=np.array(TAGS + [[""] * 8] * unplayed, dtype=object),
        release_days=None if release_days is None else np.array(release_days))
    sizes = train.vocabularies(transform_output)
    users = list(transform_output.vocabulary_by_name(features.USER_VOCABULARY))
    tracks = list(transform_output.vocabulary_by_name(features.TRACK_VOCABULARY))
    histories = np.full((sizes.users + 2, features.HISTORY_LENGTH), sizes.tracks + 1, np.int32)
    histories[users.index(b"u0"), :2] = [tracks.index(b"t3"), tracks.index(b"t2")]
    tables = served_index.build_tables(
        embeddings, index.content_only, index.release_days, recency_bias,
        REQUEST_DAY if dated else None, num_partitions=2 + unplayed // 100) if indexed else None
    with pytest.MonkeyPatch.context() as patch:
        # So small a catalogue would always go to brute force (ServedIndex.exact_from).
        patch.setattr(served_index, "EXACT_SEARCH_SHARE", 2.0)
        module = export.RecommenderModule(two_tower, transform_output, index, default_k=2,
                                          max_k=100, user_histories=histories,
                                          index_tables=tables,
                                          default_probe=1 + (unplayed and unplayed // 100 + 1))
    return module


@pytest.fixture(scope="module", params=[False, True], ids=["exact", "indexed"])
def served(request, tmp_path_factory):
    return _export(tmp_path_factory, indexed=request.param)


# The bias of a track 60-179 days old (t3): large enough to rank it first for anyone; and of
# a content-only track (never played: t5) not released yet: enough to rank it second.
OLDISH_BIAS, UNRELEASED_CONTENT_ONLY_BIAS = 5.0, 2.5


@pytest.fixture(scope="module", params=[False, True], ids=["exact", "indexed"])
def dated(request, tmp_path_factory):
    bias = np.zeros((2, recency.NUM_BUCKETS), np.float32)
    bias[recency.ID_KNOWN, recency.AGE_BOUNDARIES.index(60) + 1] = OLDISH_BIAS
    bias[recency.CONTENT_ONLY, 0] = UNRELEASED_CONTENT_ONLY_BIAS
    # Rows must not be mixed up: the same buckets of the other rows push the other way.
    bias[recency.CONTENT_ONLY, recency.AGE_BOUNDARIES.index(60) + 1] = -OLDISH_BIAS
    bias[recency.ID_KNOWN, 0] = -UNRELEASED_CONTENT_ONLY_BIAS
    return _export(tmp_path_factory, RELEASE_DAYS, bias, indexed=request.param)


def _recommend(model, users, k, history=None, platform="android"):
    history = history if history is not None else [[""]] * len(users)
    return model.signatures[export.SERVING_DEFAULT](
        user_id=tf.constant(users), recent_track_ids=tf.constant(history),
        timestamp=tf.constant([1_700_000_000] * len(users), tf.int64),
        platform=tf.constant([platform] * len(users)), k=tf.constant([k] * len(users)))


def test_signatures_are_named(served):
    assert set(served.signatures) == {export.SERVING_DEFAULT, export.RECOMMEND, export.BLEND,
                                      export.SIMILAR_TRACKS, export.QUERY_EMBEDDING,
                                      export.CANDIDATE_EMBEDDING, export.EVALUATE_EXAMPLES}
    outputs = served.signatures[export.SERVING_DEFAULT].structured_outputs
    assert set(outputs) == {"track_ids", "scores"}
    assert set(served.signatures[export.RECOMMEND].structured_outputs) == {
        "track_ids", "scores", "titles", "artists", "propensities"}


def test_recommend_returns_k_distinct_catalogue_tracks_best_first(served):
    result = _recommend(served, ["u0", "u1"], 4, history=[["t1", "t2"], ["t3", ""]])
    ids = result["track_ids"].numpy()
    assert ids.shape == (2, 4)
    for row in ids:
        assert len(set(row)) == 4 and {t.decode() for t in row} <= set(CATALOGUE)
    scores = result["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_k_defaults_and_cap(served):
    assert _recommend(served, ["u0"], 0)["track_ids"].shape == (1, 2)  # default_k
    assert _recommend(served, ["u0"], 50)["track_ids"].shape == (1, len(CATALOGUE))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 100"):
        _recommend(served, ["u0"], 101)


def test_cold_query_gets_the_most_popular_tracks(served):
    result = _recommend(served, ["somebody-new"], 3)
    assert [t.decode() for t in result["track_ids"].numpy()[0]][:2] == ["t1", "t2"]
    # A new user with a known recent track is not cold: the towers answer.
    warm = _recommend(served, ["somebody-new"], 3, history=[["t3"]])
    assert np.all(np.abs(warm["scores"].numpy()) <= 1.0 + 1e-5)


def test_similar_tracks_and_candidate_embeddings(served):
    similar = served.signatures[export.SIMILAR_TRACKS](
        track_id=tf.constant(["t5", "nope"]), k=tf.constant([4, 4]))
    assert similar["found"].numpy().tolist() == [True, False]
    assert b"t5" not in similar["track_ids"].numpy()[0].tolist()
    embedding = served.signatures[export.CANDIDATE_EMBEDDING](track_id=tf.constant(["t5", "x"]))
    norms = np.linalg.norm(embedding["embedding"].numpy(), axis=1)
    assert norms[0] == pytest.approx(1.0, rel=1e-5) and norms[1] == 0.0
    query = served.signatures[export.QUERY_EMBEDDING](
        user_id=tf.constant(["u0"]), recent_track_ids=tf.constant([["t1"]]),
        timestamp=tf.constant([0], tf.int64), platform=tf.constant(["ios"]))
    assert query["embedding"].shape == (1, HP.embedding_dim)


def test_evaluate_examples_ranks_agree_with_serving(served):
    play = raw_play("u1", "t3", history=["t1", "t2"], ts=1_700_000_000)
    ranks = served.signatures[export.EVALUATE_EXAMPLES](examples=tf.constant([serialize(play)]))
    ranking = _recommend(served, ["u1"], len(CATALOGUE), history=[["t1", "t2"]])
    served_order = [t.decode() for t in ranking["track_ids"].numpy()[0]]
    assert int(ranks["label_rank"][0]) == served_order.index("t3")
    assert int(ranks["popularity_rank"][0]) == 2  # t1, t2, then t3 (ties by catalogue order)
    assert int(ranks["catalogue_size"][0]) == len(CATALOGUE)
    # Brute force, or an index so small that every partition is probed: all found.
    assert ranks["index_recall"].numpy().tolist() == [1.0]
    unknown = raw_play("u1", "not-in-catalogue")
    ranks = served.signatures[export.EVALUATE_EXAMPLES](examples=tf.constant([serialize(unknown)]))
    assert int(ranks["label_rank"][0]) == len(CATALOGUE)
    assert int(ranks["label_train_plays"][0]) == -1


def test_evaluate_examples_reports_the_played_tracks_training_plays(served):
    # t5 is in the catalogue but was never played in training: a cold play.
    plays = [raw_play("u1", track, history=["t1"]) for track in ("t1", "t3", "t5")]
    outputs = served.signatures[export.EVALUATE_EXAMPLES](
        examples=tf.constant([serialize(play) for play in plays]))
    assert outputs["label_train_plays"].numpy().tolist() == [PLAYS["t1"], PLAYS["t3"], 0]


def _controlled(model, users, k=4, history=None, exclude=None, diversity=0.0, explore=0.0,
                seed=0, released=0, probe=0):
    rows = len(users)

    def per_row(value, dtype):
        return tf.constant(value if isinstance(value, list) else [value] * rows, dtype)

    return model.signatures[export.RECOMMEND](
        user_id=tf.constant(users),
        recent_track_ids=tf.constant(history if history is not None else [[""]] * rows),
        timestamp=tf.constant([1_700_000_000] * rows, tf.int64),
        platform=tf.constant(["android"] * rows), k=tf.constant([k] * rows),
        exclude_track_ids=tf.constant(exclude if exclude is not None else [[""]] * rows),
        diversity=per_row(diversity, tf.float32), explore=per_row(explore, tf.float32),
        seed=per_row(seed, tf.int64), released_within_days=per_row(released, tf.int32),
        probe=per_row(probe, tf.int32))


def _ids(result, key="track_ids"):
    return [[value.decode() for value in row] for row in result[key].numpy()]


def test_neutral_controls_answer_as_serving_default(served):
    history = [["t1", "t2"], ["t3", ""]]
    plain = _recommend(served, ["u0", "u1"], 5, history=history)
    controlled = _controlled(served, ["u0", "u1"], k=5, history=history)
    assert _ids(controlled) == _ids(plain)
    np.testing.assert_allclose(controlled["scores"].numpy(), plain["scores"].numpy(), atol=1e-6)
    assert np.all(controlled["propensities"].numpy() == 1.0)


def test_diversity_zero_keeps_the_order_when_another_row_explores(served):
    # The second row makes the batch take the re-ranking loop; the first must not change.
    history = [["t1", "t2"], ["t1", "t2"]]
    plain = _recommend(served, ["u0", "u0"], 5, history=history)
    mixed = _controlled(served, ["u0", "u0"], k=5, history=history, diversity=[0.0, 0.9],
                        explore=[0.0, 0.5], seed=[0, 3])
    assert _ids(mixed)[0] == _ids(plain)[0]
    assert mixed["propensities"].numpy()[0].tolist() == [1.0] * 5
    assert sorted(_ids(mixed)[1]) == sorted(CATALOGUE)  # a permutation, each track once


def test_titles_and_artists_follow_the_tracks(served):
    result = _controlled(served, ["u1"], k=5, history=[["t1"]])
    for track, title, artist in zip(_ids(result)[0], _ids(result, "titles")[0],
                                    _ids(result, "artists")[0], strict=True):
        row = CATALOGUE.index(track)
        assert (title, artist) == (TITLES[row], ARTISTS[row])


def test_exclusions_are_never_returned_even_covering_almost_everything(served):
    result = _controlled(served, ["u0", "u1"], k=3, history=[["t1"], ["t2"]],
                         exclude=[["t1", "t2", "t3", "t4"], ["t5", "unknown", "", ""]],
                         diversity=0.5, explore=0.5, seed=7)
    first, second = _ids(result)
    assert first == ["t5", "", ""]  # one eligible track; the other slots are empty
    assert result["scores"].numpy()[0, 1:].tolist() == [0.0, 0.0]
    assert result["propensities"].numpy()[0].tolist() == [1.0, 1.0, 1.0]
    assert "t5" not in second and "" not in second and len(set(second)) == 3


def test_same_seed_same_list_and_seed_zero_is_derived_from_the_request(served):
    kwargs = dict(k=4, history=[["t1"]], diversity=0.3, explore=0.8)
    lists = {tuple(_ids(_controlled(served, ["u1"], seed=seed, **kwargs))[0])
             for seed in range(1, 30)}
    assert len(lists) > 1  # exploring does vary with the seed
    again = [_ids(_controlled(served, ["u1"], seed=5, **kwargs)) for _ in range(2)]
    assert again[0] == again[1]
    derived = [_ids(_controlled(served, ["u1"], seed=0, **kwargs)) for _ in range(2)]
    assert derived[0] == derived[1]
    # A row's list does not depend on the rows batched with it.
    batched = _controlled(served, ["u2", "u1"], seed=[9, 5], k=4, history=[["t3"], ["t1"]],
                          diversity=0.3, explore=0.8)
    assert _ids(batched)[1] == again[0][0]
    # ... nor on their k: a batch answers max(k) slots, and a row's first slots stay the same.
    shorter = _controlled(served, ["u1"], seed=5, k=2, history=[["t1"]], diversity=0.3,
                          explore=0.8)
    assert _ids(shorter)[0] == again[0][0][:2]


@pytest.mark.parametrize("control, value, message", [
    ("diversity", 1.5, "diversity must be in"), ("diversity", float("nan"), "diversity must"),
    ("explore", -0.1, "explore must be in"), ("released", 7, "released_within_days"),
    ("released", -1, "released_within_days"), ("probe", -1, "probe must be"),
])
def test_invalid_controls_are_invalid_argument(served, control, value, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _controlled(served, ["u0"], **{control: value})


def test_controls_need_one_row_per_user(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="diversity must have one row"):
        _controlled(served, ["u0", "u1"], diversity=[0.1])


def test_propensities_match_sampling_frequencies(served):
    """100,000 responses for one request, varying the seed: every slot's empirical frequency
    of each choice given its prefix is within 3 standard errors of the reported propensity."""
    k, samples, batch = 3, 100_000, 25_000
    lists, propensities = [], []
    for start in range(1, samples + 1, batch):
        result = _controlled(served, ["u1"] * batch, k=k, history=[["t1"]] * batch,
                             diversity=0.4, explore=0.6,
                             seed=list(range(start, start + batch)))
        lists += [tuple(row) for row in _ids(result)]
        propensities.append(result["propensities"].numpy())
    propensities = np.concatenate(propensities)
    checked = 0
    for slot in range(k):
        prefixes = {}
        for row, chosen in enumerate(lists):
            prefixes.setdefault(chosen[:slot], []).append(row)
        for rows in prefixes.values():
            if len(rows) < 1000:
                continue
            choices = [lists[row][slot] for row in rows]
            for track in set(choices):
                reported = propensities[[r for r in rows if lists[r][slot] == track], slot]
                assert np.ptp(reported) < 1e-6  # the same prefix and choice: one propensity
                expected = float(reported[0])
                frequency = choices.count(track) / len(rows)
                error = np.sqrt(expected * (1 - expected) / len(rows))
                assert abs(frequency - expected) <= 3 * error + 1e-9, (slot, track)
                checked += 1
    assert checked >= 10


def test_stored_history_answers_a_user_id_alone(served):
    def embed(users, history):
        return served.signatures[export.QUERY_EMBEDDING](
            user_id=tf.constant(users), recent_track_ids=tf.constant(history),
            timestamp=tf.constant([1_700_000_000] * len(users), tf.int64),
            platform=tf.constant(["android"] * len(users)))["embedding"].numpy()

    alone, stored, other = embed(["u0", "u0", "u0"], [["", ""], ["t3", "t2"], ["t4", ""]])
    np.testing.assert_allclose(alone, stored, atol=1e-6)
    assert not np.allclose(alone, other, atol=1e-4)  # a sent history overrides the stored one
    served_alone = _recommend(served, ["u0"], 5)
    served_sent = _recommend(served, ["u0"], 5, history=[["t3", "t2"]])
    assert _ids(served_alone) == _ids(served_sent)
    # An unknown user with no history is still cold: the most popular tracks.
    assert _ids(_recommend(served, ["nobody"], 2)) == [["t1", "t2"]]


def test_weighted_history_pooling_serves_histories_and_users_without_one(tmp_path_factory):
    model = _export(tmp_path_factory, hp=dataclasses.replace(HP, history_pooling="weighted"))
    embedding = model.signatures[export.QUERY_EMBEDDING](
        user_id=tf.constant(["u0", "nobody", "u1"]),
        recent_track_ids=tf.constant([["", ""], ["", ""], ["t4", "t1"]]),
        timestamp=tf.constant([1_700_000_000] * 3, tf.int64),
        platform=tf.constant(["android"] * 3))["embedding"].numpy()
    assert np.isfinite(embedding).all()  # an all-padding history pools to zeros, not NaN
    assert _ids(_recommend(model, ["u0"], 5)) == _ids(
        _recommend(model, ["u0"], 5, history=[["t3", "t2"]]))  # the stored history


def test_evaluate_examples_list_metrics_match_the_numpy_definition(served):
    plays = [raw_play(user, "t3", history=history, ts=1_700_000_000)
             for user, history in (("u1", ["t1"]), ("u2", ["t2", "t4"]), ("u0", []))]
    outputs = served.signatures[export.EVALUATE_EXAMPLES](
        examples=tf.constant([serialize(play) for play in plays]))
    lists = outputs["top_indices"].numpy()[:, :list_metrics.LIST_CUTOFF]
    content = list_metrics.content_matrix(np.array(GENRES, dtype=object),
                                          np.array(TAGS, dtype=object))
    np.testing.assert_allclose(outputs["intra_list_diversity"].numpy(),
                               list_metrics.intra_list_diversity(lists, content), atol=1e-5)
    counts = np.array([PLAYS.get(track, 0) for track in CATALOGUE])
    np.testing.assert_allclose(
        outputs["novelty"].numpy(),
        list_metrics.novelty(lists, list_metrics.self_information(counts)), atol=1e-4)


def _blend(model, groups, k=3, strategy=0, recent=None, exclude=None, rows=None):
    members = max(len(g) for g in groups)
    users = [list(g) + [""] * (members - len(g)) for g in groups]
    recent = recent if recent is not None else [[[""]] * members for _ in groups]
    rows = rows if rows is not None else len(groups)
    return model.signatures[export.BLEND](
        user_ids=tf.constant(users), recent_track_ids=tf.constant(recent),
        timestamp=tf.constant([1_700_000_000] * rows, tf.int64),
        platform=tf.constant(["android"] * rows), k=tf.constant([k] * rows),
        strategy=tf.constant([strategy] * rows, tf.int32),
        exclude_track_ids=tf.constant(exclude or [[""]] * rows))


@pytest.mark.parametrize("strategy", [0, 1, 2])
def test_a_blend_of_one_member_is_their_serving_default_list(served, strategy):
    solo = _recommend(served, ["u0", "u1"], 4)
    # Alone; then beside padding and a repeat of itself (column: where its one member stands).
    for groups, column in (([["u0"], ["u1"]], [0, 0]),
                           ([["u0", "", "u0"], ["", "u1"]], [0, 1])):
        result = _blend(served, groups, k=4, strategy=strategy)
        assert result["track_ids"].numpy().tolist() == solo["track_ids"].numpy().tolist()
        own = result["member_scores"].numpy()
        np.testing.assert_allclose([own[0, :, column[0]], own[1, :, column[1]]],
                                   solo["scores"].numpy(), rtol=1e-5, atol=1e-6)
        assert result["for_member"].numpy().tolist() == [[0] * 4, [column[1]] * 4]


def test_a_blend_serves_every_member_and_says_for_whom(served):
    result = _blend(served, [["u0", "u1"]], k=4, strategy=2,
                    recent=[[["t3"], ["t1"]]], exclude=[["t2"]])
    ids = [t.decode() for t in result["track_ids"].numpy()[0]]
    assert "t2" not in ids and len(set(ids)) == 4
    assert result["for_member"].numpy()[0].tolist() == [0, 1, 0, 1]
    assert result["member_scores"].shape == (1, 4, 2)
    titles = dict(zip(CATALOGUE, TITLES, strict=True))
    assert [t.decode() for t in result["titles"].numpy()[0]] == [titles[i] for i in ids]


@pytest.mark.parametrize("strategy, combine", [(0, np.mean), (1, np.min)])
def test_a_blend_ranks_its_members_standardised_scores(served, strategy, combine):
    # Each member's scores standardised over the eligible catalogue (t2 excluded), combined;
    # through the index, the union of the members' pools is ranked the same way.
    users = ["u0", "u1", "nobody"]
    scores = served.catalogue_scores(
        tf.constant(users), tf.constant([[""]] * 3), tf.constant([1_700_000_000] * 3, tf.int64),
        tf.constant(["android"] * 3)).numpy()
    eligible = np.array([track != "t2" for track in CATALOGUE])
    kept = scores[:, eligible]
    z = (scores - kept.mean(axis=1, keepdims=True)) / kept.std(axis=1, keepdims=True)
    group = np.where(eligible, combine(z, axis=0), -np.inf)
    best = np.argsort(-group, kind="stable")[:3]
    result = _blend(served, [users], k=3, strategy=strategy, exclude=[["t2"]])
    assert [t.decode() for t in result["track_ids"].numpy()[0]] == [CATALOGUE[i] for i in best]
    np.testing.assert_allclose(result["scores"].numpy()[0], group[best], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result["member_scores"].numpy()[0], scores[:, best].T,
                               rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """(exact, indexed) models of a catalogue of 605 tracks: member pools (100) hold a
    sixth of it; the index probes every partition."""
    return (_export(tmp_path_factory, unplayed=600),
            _export(tmp_path_factory, indexed=True, unplayed=600))


def test_through_the_index_average_and_interleave_blends_are_the_exact_ones(wide):
    exact, indexed = wide
    groups = [["u0", "u1", "u2"], ["u3", "", ""], ["u1", "nobody", ""]]
    for strategy in (0, 2):
        lists = [_blend(model, groups, k=20, strategy=strategy, exclude=[["t2", "x5"]] * 3)
                 for model in wide]
        for name in ("track_ids", "for_member"):
            assert (lists[0][name].numpy().tolist()
                    == lists[1][name].numpy().tolist()), (strategy, name)
        np.testing.assert_allclose(lists[1]["scores"].numpy(), lists[0]["scores"].numpy(),
                                   rtol=1e-4, atol=1e-4)
    misery = _blend(indexed, groups, k=20, strategy=1)["track_ids"].numpy()
    assert all(len(set(row)) == 20 for row in misery)  # approximate: the union only


def test_the_calibrated_probe_is_the_least_whose_searches_reach_the_target(tmp_path_factory):
    module = _module(tmp_path_factory, indexed=True, unplayed=600)
    queries = np.random.default_rng(5).normal(size=(256, HP.embedding_dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    days = np.full(len(queries), REQUEST_DAY, np.int64)
    probe, recall = module.calibrate_index(queries, days)
    searched = module.index_recall_at(queries, days)  # the served search at each probe
    assert 1 < probe < module.index.exact_from  # a choice among partitions, not brute force
    assert int(module.index.default_probe.numpy()) == probe
    assert recall == searched(probe) >= served_index.CALIBRATION_RECALL
    assert searched(probe - 1) < served_index.CALIBRATION_RECALL


def test_a_blend_row_does_not_depend_on_its_batch_mates(served):
    alone = _blend(served, [["u0", "u1"]], k=4)
    batched = _blend(served, [["u0", "u1", "", ""], ["u2", "u3", "somebody", "u1"]], k=4)
    assert batched["track_ids"].numpy()[0].tolist() == alone["track_ids"].numpy()[0].tolist()
    np.testing.assert_allclose(batched["scores"].numpy()[0], alone["scores"].numpy()[0],
                               rtol=1e-4, atol=1e-4)  # batched matmuls round differently


def test_an_empty_blend_is_answered(served):
    result = served.signatures[export.BLEND](
        user_ids=tf.zeros([0, 2], tf.string), recent_track_ids=tf.zeros([0, 2, 1], tf.string),
        timestamp=tf.zeros([0], tf.int64), platform=tf.zeros([0], tf.string),
        k=tf.zeros([0], tf.int32), strategy=tf.zeros([0], tf.int32),
        exclude_track_ids=tf.zeros([0, 1], tf.string))
    assert result["track_ids"].shape[0] == 0


def test_unknown_members_are_answered_from_the_cold_start_ranking(served):
    result = _blend(served, [["somebody", "nobody"]], k=2, strategy=1)
    assert [t.decode() for t in result["track_ids"].numpy()[0]] == ["t1", "t2"]


@pytest.mark.parametrize("change, message", [
    (dict(groups=[["u0", "u1", "u2", "u3", "u4", "u5"]]), "at most 5 members"),
    (dict(groups=[["u0", "u1"], ["", ""]]), "needs a member"),
    (dict(groups=[["u0", "u1"]], strategy=3), "strategy must be 0..2"),
    (dict(groups=[["u0", "u1"]], k=101), "at most 100"),
    (dict(groups=[["u0", "u1"]], recent=[[[""]] * 3]), "recent_track_ids must be"),
    (dict(groups=[["u0", "u1"]], rows=2), "must have one row per row of user_ids"),
])
def test_bad_blends_are_invalid_argument(served, change, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _blend(served, **change)


@pytest.mark.parametrize("window, expected", [
    (1, {"t1"}), (5, {"t1"}), (6, {"t1", "t2"}), (75, {"t1", "t2"}), (76, {"t1", "t2", "t3"}),
    (100_000, {"t1", "t2", "t3"}),
])
def test_a_release_window_keeps_only_the_tracks_released_in_it(dated, window, expected):
    # t4 (no release date) and t5 (released after the request's day) are in no window.
    result = _controlled(dated, ["u0", "u1"], k=5, history=[["t2"], [""]], released=window,
                         diversity=[0.0, 0.5], explore=[0.0, 0.5], seed=3)
    for row in _ids(result):
        assert set(row) - {""} == expected
        assert row[len(expected):] == [""] * (5 - len(expected))


def test_rows_of_one_batch_keep_their_own_windows(dated):
    result = _controlled(dated, ["u0", "u0"], k=5, history=[["t2"], ["t2"]], released=[0, 1])
    unrestricted, newest = _ids(result)
    assert sorted(unrestricted) == sorted(CATALOGUE)
    assert newest == ["t1", "", "", "", ""]


def test_scores_add_the_recency_bias_of_each_tracks_age_and_kind(dated):
    outputs = _recommend(dated, ["u1"], 5, history=[["t2"]])
    # t3: 75 days old, played; t5: not yet released and never played (content only).
    assert _ids(outputs)[0][:2] == ["t3", "t5"]
    query = dated.signatures[export.QUERY_EMBEDDING](
        user_id=tf.constant(["u1"]), recent_track_ids=tf.constant([["t2"]]),
        timestamp=tf.constant([1_700_000_000], tf.int64),
        platform=tf.constant(["android"]))["embedding"].numpy()[0]
    for track, score in zip(_ids(outputs)[0], outputs["scores"].numpy()[0], strict=True):
        candidate = dated.signatures[export.CANDIDATE_EMBEDDING](
            track_id=tf.constant([track]))["embedding"].numpy()[0]
        bias = {"t3": OLDISH_BIAS, "t5": UNRELEASED_CONTENT_ONLY_BIAS}.get(track, 0.0)
        assert score == pytest.approx(float(query @ candidate) + bias, abs=1e-5)


def test_evaluate_examples_rank_with_the_recency_bias(dated):
    play = raw_play("u1", "t3", history=["t2"], ts=1_700_000_000)
    outputs = dated.signatures[export.EVALUATE_EXAMPLES](examples=tf.constant([serialize(play)]))
    assert outputs["label_rank"].numpy().tolist() == [0]


def test_age_buckets_follow_the_documented_boundaries():
    release = tf.constant([100, 99, 87, 86, 80, 40, 0, 101, features.NO_RELEASE_DAY], tf.int64)
    buckets = recency.age_buckets(tf.constant([100], tf.int64), release).numpy()[0]
    # ages 0, 1, 13, 14, 20, 60, 100 days; not yet released; unknown
    assert buckets.tolist() == [1, 2, 14, 15, 15, 18, 18, 0, recency.UNKNOWN_BUCKET]
    assert recency.NUM_BUCKETS == recency.UNKNOWN_BUCKET + 1


def test_the_index_is_stored_only_when_asked(served, request):
    indexed = request.node.callspec.params["served"]
    assert (getattr(served, "index", None) is not None) == indexed
    if indexed:  # 2 partitions asked for: 2 of the 4 played tracks, 1 of t5 (content only)
        assert served.index.centroids.shape == (3, HP.embedding_dim)
        members = served.index.members.numpy()
        assert sorted(members[members >= 0].tolist()) == list(range(len(CATALOGUE)))
