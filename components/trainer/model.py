"""The two-tower retrieval model: a query tower, a candidate tower and an in-batch softmax.

Both towers read transformed features (see components/transform/preprocessing.py) and map a
batch to L2-normalised embeddings of shape [batch, embedding_dim]; a query's score for a track is
their dot product (cosine similarity), divided by a temperature in the loss.

Unseen ids are embedded through the vocabularies' OOV row. During training a small share of user
ids (query tower) and track ids (candidate tower) are replaced by that OOV row, so it learns what
an unknown user or an unplayed track looks like from the other features: history and context for
users; artist, genres, tags and audio descriptors for tracks.
"""
import dataclasses
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from crossfade.components import features
from crossfade.components.trainer.hyperparameters import CATALOGUE, WEIGHTED, Hyperparameters
from crossfade.components.trainer.losses import CatalogueSoftmax, InBatchSoftmax
from crossfade.components.trainer.recency import NEW_RELEASE_DAYS, RecencyBias, request_days


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """Vocabulary sizes V (known values) of the Transform output; OOV is V, padding V + 1."""

    users: int
    tracks: int
    artists: int
    genres: int
    tags: int
    platforms: int


def _table(rows: int, dim: int, name: str) -> tf.keras.layers.Embedding:
    # Two extra rows: OOV (V) and padding (V + 1).
    return tf.keras.layers.Embedding(rows + 2, dim, name=name,
                                     embeddings_initializer=tf.keras.initializers.RandomNormal(
                                         stddev=0.05))


def weighted_sum(weights: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """[B, D] sum over a list of `embeddings` [B, n, D] weighted by `weights` [B, n].

    A [B, 1, n] x [B, n, D] batched matmul: its gradient is two more matmuls, where the
    broadcast product and reduce_sum it replaces materialise [B, n, D] twice (forward and
    gradient; measured on the default data's 40-track histories: about 1 ms a step)."""
    return tf.squeeze(tf.matmul(weights[:, None, :], embeddings), axis=1)


class MaskedMean(tf.keras.layers.Layer):
    """Mean of embeddings over a list axis, ignoring padding.

    Input: indices [batch, n] and their embeddings [batch, n, dim]; entries equal to
    `padding_index` are left out. Output: [batch, dim]; all-padding rows give zeros.
    """

    def __init__(self, padding_index: int, **kwargs):
        super().__init__(**kwargs)
        self.padding_index = padding_index

    def call(self, indices: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.not_equal(indices, self.padding_index), embeddings.dtype)
        return weighted_sum(mask / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0),
                            embeddings)


class WeightedMean(tf.keras.layers.Layer):
    """Weighted mean of embeddings over a list axis, each id's weight learned, padding left out.

    Input: indices [batch, n] (0..`padding_index`, padding last) and their embeddings
    [batch, n, dim]; output [batch, dim], the softmax over a row's non-padding entries of a
    learned per-id logit (a [padding_index + 1, 1] table, zeros at first, so training starts
    from `MaskedMean`) weighting their embeddings. An
    id's weight is the same in every history: a learned, IDF-like importance (an artist
    everyone plays says less about a listener than a rare one), not attention on the query.
    All-padding rows give zeros.
    """

    def __init__(self, padding_index: int, **kwargs):
        super().__init__(**kwargs)
        self.padding_index = padding_index
        self.logits = tf.keras.layers.Embedding(padding_index + 1, 1,
                                                embeddings_initializer="zeros",
                                                name="history_weight")

    def call(self, indices: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
        present = tf.not_equal(indices, self.padding_index)
        # In float32 whatever the embeddings' dtype: a float16 -1e9 would be -inf, and an
        # all-padding row's softmax NaN.
        logits = tf.cast(tf.squeeze(self.logits(indices), -1), tf.float32)
        logits = tf.where(present, logits, tf.float32.min)
        weights = tf.nn.softmax(logits, axis=1) * tf.cast(present, tf.float32)
        return weighted_sum(tf.cast(weights, embeddings.dtype), embeddings)


class IdDropout(tf.keras.layers.Layer):
    """In training, replaces a `rate` share of ids by `replacement_index`.

    With the OOV index, the OOV row is learned (what an unknown user or track looks like);
    with the padding index of a list, entries are masked out of `MaskedMean` or
    `WeightedMean` (history dropout). Input and output: ids of any shape; unchanged outside
    training.
    """

    def __init__(self, rate: float, replacement_index: int, seed: Optional[int] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.replacement_index = replacement_index
        self.seed = seed

    def call(self, ids: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        if not training or self.rate <= 0:
            return ids
        drop = tf.random.uniform(tf.shape(ids), seed=self.seed) < self.rate
        return tf.where(drop, tf.cast(self.replacement_index, ids.dtype), ids)


class QueryTower(tf.keras.layers.Layer):
    """User id + recent tracks + context (hour, weekday, platform) -> [batch, embedding_dim].

    `track_embedding` is shared with the candidate tower, so history and candidates live in
    one space and a history of rarely played tracks still carries signal. With
    `hp.use_user_id` off the user id is not embedded (its slot is zeros); with
    `hp.time_context` off hour and weekday are not read.
    """

    def __init__(self, vocabularies: Vocabularies, hp: Hyperparameters,
                 track_embedding: tf.keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.user_dropout = IdDropout(hp.id_dropout, vocabularies.users, seed=hp.seed)
        self.use_user_id = hp.use_user_id
        self.user_embedding = (_table(vocabularies.users, hp.id_embedding_dim, "user_embedding")
                               if hp.use_user_id else None)
        self.track_embedding = track_embedding
        self.history_dropout = IdDropout(hp.history_dropout, vocabularies.tracks + 1,
                                         seed=hp.seed + 2)
        pooling = WeightedMean if hp.history_pooling == WEIGHTED else MaskedMean
        self.history_mean = pooling(vocabularies.tracks + 1)
        self.time_context = hp.time_context
        if hp.time_context:
            self.hour_embedding = tf.keras.layers.Embedding(24, hp.content_embedding_dim)
            self.weekday_embedding = tf.keras.layers.Embedding(7, hp.content_embedding_dim // 2)
        self.platform_embedding = _table(vocabularies.platforms, hp.content_embedding_dim // 2,
                                         "platform_embedding")
        self.hidden = tf.keras.layers.Dense(hp.hidden_units, activation="relu")
        self.projection = tf.keras.layers.Dense(hp.embedding_dim)

    def call(self, inputs: Dict[str, tf.Tensor], training: Optional[bool] = None) -> tf.Tensor:
        history = self.history_dropout(inputs[features.RECENT_TRACK_INDICES], training=training)
        history_embedding = self.history_mean(history, self.track_embedding(history))
        if self.use_user_id:
            users = self.user_dropout(inputs[features.USER_INDEX], training=training)
            user_embedding = self.user_embedding(users)
        else:
            user_embedding = tf.zeros_like(history_embedding)
        context = [self.platform_embedding(inputs[features.PLATFORM_INDEX])]
        if self.time_context:
            context += [self.hour_embedding(inputs[features.HOUR]),
                        self.weekday_embedding(inputs[features.WEEKDAY])]
        joined = tf.concat([user_embedding, history_embedding] + context, axis=1)
        # The residual keeps the id/history signal direct; the MLP adds context interactions.
        query = self.projection(self.hidden(joined)) + history_embedding
        return tf.math.l2_normalize(query, axis=1)


class CandidateTower(tf.keras.layers.Layer):
    """Track id + artist + genres + tags + audio descriptors -> [batch, embedding_dim]."""

    def __init__(self, vocabularies: Vocabularies, hp: Hyperparameters,
                 track_embedding: tf.keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.track_dropout = IdDropout(hp.id_dropout, vocabularies.tracks, seed=hp.seed + 1)
        self.track_embedding = track_embedding
        self.artist_embedding = _table(vocabularies.artists, hp.id_embedding_dim,
                                       "artist_embedding")
        self.genre_embedding = _table(vocabularies.genres, hp.content_embedding_dim,
                                      "genre_embedding")
        self.genre_mean = MaskedMean(vocabularies.genres + 1)
        self.tag_embedding = _table(vocabularies.tags, hp.content_embedding_dim,
                                    "tag_embedding")
        self.tag_mean = MaskedMean(vocabularies.tags + 1)
        self.audio = tf.keras.layers.Dense(hp.content_embedding_dim, activation="relu")
        self.hidden = tf.keras.layers.Dense(hp.hidden_units, activation="relu")
        self.projection = tf.keras.layers.Dense(hp.embedding_dim)

    def call(self, inputs: Dict[str, tf.Tensor], training: Optional[bool] = None,
             track_ids: Optional[tf.Tensor] = None) -> tf.Tensor:
        """`track_ids`: the ids to embed, already through `track_dropout` (None: the tower
        applies it to `inputs`' track index)."""
        tracks = (self.track_dropout(inputs[features.TRACK_INDEX], training=training)
                  if track_ids is None else track_ids)
        genres = inputs[features.GENRE_INDICES]
        tags = inputs[features.TAG_INDICES]
        track_embedding = self.track_embedding(tracks)
        content = tf.concat([
            self.artist_embedding(inputs[features.ARTIST_INDEX]),
            self.genre_mean(genres, self.genre_embedding(genres)),
            self.tag_mean(tags, self.tag_embedding(tags)),
            self.audio(inputs[features.AUDIO]),
        ], axis=1)
        candidate = self.projection(self.hidden(tf.concat([track_embedding, content], axis=1)))
        return tf.math.l2_normalize(candidate + track_embedding, axis=1)


class TwoTowerModel(tfrs.Model):
    """Softmax retrieval over in-batch or whole-catalogue negatives (`hp.negatives`).

    In-batch: `sampling_probability` maps a track index (0..V, V = OOV) to q, the track's
    share of training plays; in-batch negatives are sampled in proportion to popularity, and
    subtracting log q from the logits corrects that bias; accidental hits are removed.
    Catalogue: `catalogue` holds the transformed candidate features of every catalogue track
    ([C, ...] each) and `catalogue_row` maps a track index to its catalogue row; each step
    encodes the whole catalogue and takes the exact softmax over it.

    Release recency (`hp.recency_bias`, components/trainer/recency.py): with
    `catalogue_release_days` ([C] days, row-aligned with `catalogue_row`'s rows) every logit
    gains the learned bias of the candidate's age on the query's play day, from the row of
    content-only candidates where `IdDropout` took the candidate's id. `recency_bias` is the
    layer, or None when the model has none.

    With `hp.content_loss_weight` > 0 training adds that weight times a second softmax loss
    in which every candidate is content only (see `Hyperparameters.content_loss_weight`).
    """

    def __init__(self, vocabularies: Vocabularies, hp: Hyperparameters,
                 sampling_probability: tf.Tensor,
                 catalogue: Optional[Dict[str, tf.Tensor]] = None,
                 catalogue_row: Optional[tf.Tensor] = None,
                 catalogue_release_days: Optional[tf.Tensor] = None):
        super().__init__()
        track_embedding = _table(vocabularies.tracks, hp.id_embedding_dim, "track_embedding")
        if hp.id_embedding_dim != hp.embedding_dim:
            raise ValueError("id_embedding_dim must equal embedding_dim: the track table is "
                             "shared between history and candidates")
        self.query_tower = QueryTower(vocabularies, hp, track_embedding)
        self.candidate_tower = CandidateTower(vocabularies, hp, track_embedding)
        self.sampling_probability = tf.constant(sampling_probability, tf.float32)
        # No FactorizedTopK metric here: ranking the whole catalogue every step is slow, so
        # retrieval metrics are the Evaluator's job.
        self.negatives = hp.negatives
        needs_rows = hp.negatives == CATALOGUE or (hp.recency_bias and
                                                   catalogue_release_days is not None)
        if needs_rows and catalogue_row is None:
            raise ValueError("catalogue negatives and the recency bias need catalogue rows")
        if catalogue_row is not None:
            self.catalogue_row = tf.constant(catalogue_row, tf.int32)
        self.artist_dropout, self.artist_seed = hp.artist_dropout, hp.seed + 4
        self.content_loss_weight = hp.content_loss_weight
        self.track_oov_index, self.artist_oov_index = vocabularies.tracks, vocabularies.artists
        self.recency_bias = None
        if hp.recency_bias and catalogue_release_days is not None:
            self.recency_bias = RecencyBias(name="recency_bias")
            self.release_days = tf.constant(catalogue_release_days, tf.int64)
            self.new_release_dropout = hp.new_release_dropout
            self.dropout_seed = hp.seed + 3
        if hp.negatives == CATALOGUE:
            if catalogue is None:
                raise ValueError("catalogue negatives need the catalogue's features")
            self.catalogue = catalogue
            self.loss_layer = CatalogueSoftmax(temperature=hp.temperature)
        else:
            self.loss_layer = InBatchSoftmax(temperature=hp.temperature,
                                             logq_correction=hp.logq_correction)

    def _recency_inputs(self, inputs: Dict[str, tf.Tensor], rows: tf.Tensor,
                        track_ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`recency_bias`'s inputs for N candidates - catalogue `rows` [N] embedded from
        `track_ids` [N] (the OOV id: content only): each query's play day [B], the candidates'
        release days [N] and content-only flags [N]."""
        return (request_days(inputs[features.PLAY_TIME]), tf.gather(self.release_days, rows),
                tf.equal(track_ids, self.track_oov_index))

    def _score_bias(self, inputs: Dict[str, tf.Tensor], rows: tf.Tensor,
                    track_ids: tf.Tensor) -> Optional[tf.Tensor]:
        """[B, N] recency bias of N candidates (`_recency_inputs`) on each query's play day;
        None when the model has no recency bias."""
        if self.recency_bias is None:
            return None
        return self.recency_bias(*self._recency_inputs(inputs, rows, track_ids))

    def _in_batch_score_biases(self, inputs: Dict[str, tf.Tensor], rows: tf.Tensor,
                               track_ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """The recency bias of the batch's B candidates (`_recency_inputs`) on each query's
        play day, [B, B], and its diagonal [B], each query's bias for its own candidate,
        computed apart for `InBatchSoftmax`."""
        days, release_days, content_only = self._recency_inputs(inputs, rows, track_ids)
        return (self.recency_bias(days, release_days, content_only),
                self.recency_bias(days, release_days[:, None], content_only[:, None])[:, 0])

    def _new_releases_dropped(self, inputs: Dict[str, tf.Tensor], rows: tf.Tensor,
                              embedded_ids: tf.Tensor):
        """(inputs, ids): a `new_release_dropout` share of the candidates in their first
        NEW_RELEASE_DAYS on their play's day get the OOV track and artist ids."""
        age = (request_days(inputs[features.PLAY_TIME])
               - tf.gather(self.release_days, rows))
        young = tf.logical_and(age >= 0, age < NEW_RELEASE_DAYS)
        drop = tf.logical_and(young, tf.random.uniform(tf.shape(age), seed=self.dropout_seed)
                              < self.new_release_dropout)
        return (self._without_artists(inputs, drop),
                tf.where(drop, tf.cast(self.track_oov_index, embedded_ids.dtype), embedded_ids))

    def _without_artists(self, inputs: Dict[str, tf.Tensor],
                         drop: tf.Tensor) -> Dict[str, tf.Tensor]:
        """`inputs` with the OOV artist id where `drop` [N] is true."""
        artists = inputs[features.ARTIST_INDEX]
        return {**inputs, features.ARTIST_INDEX: tf.where(
            drop, tf.cast(self.artist_oov_index, artists.dtype), artists)}

    def _artists_dropped(self, inputs: Dict[str, tf.Tensor], track_ids: tf.Tensor,
                         embedded_ids: tf.Tensor) -> Dict[str, tf.Tensor]:
        """`inputs` with an `artist_dropout` share of the candidates whose track id was
        dropped (`embedded_ids` OOV, `track_ids` not) given the OOV artist id too."""
        if self.artist_dropout <= 0:
            return inputs
        oov = self.track_oov_index
        dropped = tf.logical_and(tf.equal(embedded_ids, oov), tf.not_equal(track_ids, oov))
        return self._without_artists(inputs, tf.logical_and(
            dropped, tf.random.uniform(tf.shape(track_ids), seed=self.artist_seed)
            < self.artist_dropout))

    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """tfrs.Model's training step, traced as plain Python rather than through AutoGraph:
        nothing in the towers or the losses branches or loops on a tensor, and converting
        them took about 10 s of every Trainer run (profiled on the default data)."""
        return super().train_step(inputs)

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_tower(inputs, training=training)
        loss = self._softmax_loss(queries, inputs, training, content_only=False)
        if training and self.content_loss_weight > 0:
            loss += self.content_loss_weight * self._softmax_loss(queries, inputs, training,
                                                                  content_only=True)
        return loss

    def _embedded_ids(self, track_ids: tf.Tensor, training: bool,
                      content_only: bool) -> tf.Tensor:
        """The track ids the candidate tower embeds: all OOV, or through `IdDropout`."""
        if content_only:
            return tf.fill(tf.shape(track_ids), tf.cast(self.track_oov_index, track_ids.dtype))
        return self.candidate_tower.track_dropout(track_ids, training=training)

    def _softmax_loss(self, queries: tf.Tensor, inputs: Dict[str, tf.Tensor], training: bool,
                      content_only: bool) -> tf.Tensor:
        """The softmax loss of `queries` [B, D] against their positives and negatives, every
        candidate content only if `content_only`."""
        track_ids = inputs[features.TRACK_INDEX]
        if self.negatives == CATALOGUE:
            catalogue_tracks = self.catalogue[features.TRACK_INDEX]
            catalogue_ids = self._embedded_ids(catalogue_tracks, training, content_only)
            catalogue = self._artists_dropped(self.catalogue, catalogue_tracks, catalogue_ids)
            return self.loss_layer(
                queries, self.candidate_tower(catalogue, training=training,
                                              track_ids=catalogue_ids),
                positive_rows=tf.gather(self.catalogue_row, track_ids),
                sample_weight=inputs[features.SAMPLE_WEIGHT],
                score_bias=self._score_bias(inputs, tf.range(tf.size(catalogue_ids)),
                                            catalogue_ids))
        embedded_ids = self._embedded_ids(track_ids, training, content_only)
        inputs = self._artists_dropped(inputs, track_ids, embedded_ids)
        bias = positive_bias = None
        if self.recency_bias is not None:
            rows = tf.gather(self.catalogue_row, track_ids)
            if training and self.new_release_dropout > 0:
                inputs, embedded_ids = self._new_releases_dropped(inputs, rows, embedded_ids)
            bias, positive_bias = self._in_batch_score_biases(inputs, rows, embedded_ids)
        candidates = self.candidate_tower(inputs, training=training, track_ids=embedded_ids)
        return self.loss_layer(
            queries, candidates,
            candidate_sampling_probability=tf.gather(self.sampling_probability, track_ids),
            candidate_ids=track_ids,
            sample_weight=inputs[features.SAMPLE_WEIGHT],
            score_bias=bias, positive_score_bias=positive_bias)
