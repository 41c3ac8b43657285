"""A deterministic simulated music-streaming service: its listening logs and its listeners.

crossfade's embedded default data set and the judge of its models in simulation. Two faces
share one generative model (`world`, `responses`):

* the **log generator** (`generator.generate`, ``crossfade generate``) writes a catalogue, a
  user table, one CSV of plays per simulated day (ExampleGen spans), likes and the bot ground
  truth, a pure function of ``(preset, seed)``;
* the **environment** (`environment`) answers served lists of tracks with the simulated
  listeners' streams, skips, play lengths and likes, with long-term effects (satiation,
  discovery) as named parameters.

This package's ``__init__`` imports nothing (its modules import each other, and a package
that re-exported them would sit in an import cycle); import the module that holds a name.
Modules, one step each: `vocabulary` (fixed tables), `presets`, `sampling` (seeded streams and
samplers), `catalogue`, `listeners`, `pools` (personal candidate pools), `responses`,
`sessions` (a day of human listening), `bots`, `likes`, `plays` (a day's CSV), `world`,
`generator`, `environment`.

Generative model (what a recommender can learn from the data):

* Tracks, artists and users live in a ``latent_dim``-dimensional taste space. Genres are
  clusters: an artist's vector is its genre centroid plus noise and a track's vector is its
  artist's vector plus noise. Users mix one to three genre centroids plus personal noise.
* Track popularity is Zipf-like (``popularity ~ rank ** -zipf_exponent``).
* A user's steady-state choice distribution is a truncated softmax over a personal candidate
  pool: ``p(track) ∝ popularity ** popularity_weight * exp(affinity / taste_temperature)``, where
  ``affinity`` is the user-track dot product. The pool holds the best ``pool_per_genre`` tracks
  of each of the user's three genre slots plus the top tracks of a few favourite artists, which
  get an extra bonus (artist loyalty and repeat listening).
* Plays come in sessions. A session starts at an hour drawn from a per-user daily rhythm and a
  global diurnal curve (local time, converted to UTC by the user's country), on a platform drawn
  from the user's ``platform_mix``. Inside a session the next track is drawn from one of several
  channels: the user's pool, a recent release of one of the user's genres, a globally popular
  track, or - for coherence between consecutive plays - another track by the previous track's
  artist, the next track of its album, or one of its latent-space neighbours. Pool draws are
  also nudged towards an energy level that suits the local hour (calm at night, energetic at
  weekend nights), so time context carries a little signal.
* Low-affinity plays are skipped more often (short ``ms_played``, ``reason_end`` ``fwdbtn``,
  ``skipped`` true); the rest mostly play to the end (``trackdone``), and some stop part way
  (``endplay``/``logout``). Streamed plays are sometimes liked. The equations are in
  `responses`, the one response model of the log generator and the environment.
* ``new_release_share`` of the tracks are released on a day inside the simulated period: they
  are never played before that day and get a "new releases" boost that decays over two weeks.
* ``bot_share`` of the accounts are streaming-fraud bots: they loop a handful of obscure tracks
  in bursts every hour of the day, each play lasting just over the 30-second royalty threshold
  (30,000-31,500 ms), never skipped. A few heavy human listeners make bot filtering
  non-trivial. Bots are listed in ``truth/bots.csv``, which the training pipeline never reads.
"""
