"""Non-neural baselines for the offline quality benchmark, behind one interface.

Every model is fit on a binary ``scipy.sparse.csr_matrix`` train matrix of shape
``[num_users, num_items]`` (1.0 where the user interacted; any stored nonzero counts as an
interaction) and scores users by index:

    model = EASE(l2=500.0).fit(train)
    scores = model.scores(np.array([0, 5, 7]))   # [3, num_items] float32, higher = better

Models (``name`` is the key the benchmark's JSON uses):

* ``MostPopular`` ("most-popular"): number of training users per item, same for every user.
* ``ItemKNN`` ("item-knn"): cosine item-item similarity S_ij = (X^T X)_ij /
  (|x_i| |x_j| + shrink), each target item keeping only its `neighbours` most similar other
  items; score_ui = sum_j x_uj S_ji.
* ``EASE`` ("ease"): Steck, "Embarrassingly Shallow Autoencoders for Sparse Data" (WWW 2019).
  P = (X^T X + l2 I)^-1, B = I - P diag(1 / diag(P)) (so diag(B) = 0), score_u = x_u B.
  With fewer users than items it works through the Woodbury identity on U x U matrices and
  never forms an I x I one.
* ``IALS`` ("ials"): implicit's CPU AlternatingLeastSquares (Hu, Koren & Volinsky 2008);
  score_ui = <user_factors[u], item_factors[i]>. Only when `IALS_AVAILABLE`.
* ``ContentKNN`` ("content-knn"): items as their content tokens (genres, tags) weighted by
  inverse document frequency and L2-normalised, C [I, F]; score_u = (x_u C) C^T, the summed
  content cosine of each item to the user's items. It needs no plays of an item, so it is
  the cold-start baseline (items never played in training).

``recommend`` turns a model into top-K lists excluding seen items, and ``tune`` picks a
hyperparameter by validation Recall@K. ``DEFAULT_GRIDS`` and ``FACTORIES`` give the
benchmark's grids and how a grid value becomes a model; grid values are hashable, with
``Params`` (a frozen keyword dict) for iALS's combinations.
"""
from typing import Any, Callable, Dict, Protocol, Sequence, Tuple

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from crossfade.pipeline.quality import ranking_metrics

try:
    import threadpoolctl
    from implicit.cpu.als import AlternatingLeastSquares as _ImplicitALS
    IALS_AVAILABLE = True
except ImportError:  # the benchmark skips iALS rather than failing without implicit
    IALS_AVAILABLE = False

MOST_POPULAR = "most-popular"
ITEM_KNN = "item-knn"
EASE_NAME = "ease"
IALS_NAME = "ials"
CONTENT_KNN = "content-knn"
METHODS = (MOST_POPULAR, ITEM_KNN, EASE_NAME, IALS_NAME, CONTENT_KNN)

# Users per scoring block in `recommend`: bounds the dense [block, num_items] score matrix.
_SCORE_BLOCK_USERS = 256


class Recommender(Protocol):
    """What the benchmark needs from a model."""

    name: str

    def fit(self, train: sp.csr_matrix) -> "Recommender":
        """Fits on a [U, I] binary interaction matrix; returns self."""

    def scores(self, users: np.ndarray) -> np.ndarray:
        """[len(users), I] float32 scores for the given user indices, higher = better."""


def _binary(train: sp.csr_matrix, dtype=np.float64) -> sp.csr_matrix:
    """The train matrix with every stored nonzero set to 1 (duplicates merged)."""
    matrix = sp.csr_matrix(train, dtype=dtype, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.data[:] = 1.0
    return matrix


def _check_fitted(model, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise RuntimeError(f"{type(model).__name__} must be fit before scoring")


class MostPopular:
    """Scores each item by how many training users interacted with it."""

    name = MOST_POPULAR

    def __init__(self) -> None:
        self.popularity = None  # [I] float32

    def fit(self, train: sp.csr_matrix) -> "MostPopular":
        counts = np.asarray(_binary(train).sum(axis=0)).ravel()
        self.popularity = counts.astype(np.float32)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        _check_fitted(self, "popularity")
        return np.tile(self.popularity, (len(users), 1))


class ItemKNN:
    """Item-based k-nearest-neighbours with cosine similarity on the binary train matrix.

    Neighbour pruning is per target item (as RecBole's ItemKNN): score_ui sums the
    similarities to i of the user's items that are among i's `neighbours` most similar
    items. Equal similarities are kept in order of the lower item index.
    """

    name = ITEM_KNN

    def __init__(self, neighbours: int = 100, shrink: float = 0.0) -> None:
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.neighbours = neighbours
        self.shrink = shrink
        self.train = None  # [U, I] binary csr, float32
        self.weights = None  # [I, I] csr, weights[j, i] = S_ji for j a neighbour of i

    def fit(self, train: sp.csr_matrix) -> "ItemKNN":
        x = _binary(train)
        # X^T X has one entry per co-occurring item pair: sum_u |items(u)|^2 at most, small
        # for sparse data, and never an I x I dense matrix.
        cooccurrence = (x.T @ x).tocoo()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        off_diagonal = cooccurrence.row != cooccurrence.col
        rows = cooccurrence.row[off_diagonal]
        cols = cooccurrence.col[off_diagonal]
        similarity = cooccurrence.data[off_diagonal] / (norms[rows] * norms[cols] + self.shrink)
        # Row i of `similarity` lists item i's neighbours (S is symmetric).
        similar = sp.csr_matrix((similarity, (rows, cols)), shape=cooccurrence.shape)
        similar.sort_indices()
        pruned = _keep_top_per_row(similar, self.neighbours)
        # score_ui = sum_j x_uj S_ji over j in neighbours(i): the transpose puts target items
        # in columns, so scoring is one sparse product X_u @ W.
        self.weights = pruned.T.tocsr().astype(np.float32)
        self.train = x.astype(np.float32)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        _check_fitted(self, "weights")
        return np.asarray((self.train[users] @ self.weights).todense(), dtype=np.float32)


class ContentKNN:
    """Content-based nearest items: score_ui = sum_j x_uj cos(c_j, c_i) (see the module
    docstring). `content` [I, F] is a binary token matrix (`list_metrics.content_matrix`)."""

    name = CONTENT_KNN

    def __init__(self, content: sp.csr_matrix) -> None:
        content = sp.csr_matrix(content, dtype=np.float64)
        if not content.nnz:
            raise ValueError("content-knn needs items with content tokens")
        items_with_token = np.asarray((content > 0).sum(axis=0)).ravel()
        idf = np.log(content.shape[0] / np.maximum(items_with_token, 1))
        weighted = content @ sp.diags(idf)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        self.content = (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted).tocsr()
        self.profiles = None  # [U, F] csr: each user's summed item content

    def fit(self, train: sp.csr_matrix) -> "ContentKNN":
        self.profiles = (_binary(train) @ self.content).tocsr()
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        _check_fitted(self, "profiles")
        return np.asarray((self.profiles[users] @ self.content.T).todense(), dtype=np.float32)


def _keep_top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keeps the n largest entries of each row (ties: lower column index)."""
    lengths = np.diff(matrix.indptr)
    keep = np.ones(matrix.nnz, dtype=bool)
    # Only rows longer than n need work; a Python loop over them is cheap next to X^T X.
    for row in np.nonzero(lengths > n)[0]:
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        # lexsort's last key is primary: descending value, then ascending column.
        order = np.lexsort((matrix.indices[start:stop], -matrix.data[start:stop]))
        keep[start + order[n:]] = False
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    return sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])),
                         shape=matrix.shape)


class EASE:
    """EASE^R (Steck 2019): closed-form item-item weights with a zero diagonal.

    Args:
      l2: L2 regularisation lambda added to the diagonal of the Gram matrix.
      solver: "auto" (Woodbury when U < I, else dense), "dense" (I x I inverse) or
        "woodbury" (U x U inverse). Both give the same scores up to rounding.

    Woodbury form, with X the [U, I] train matrix and K = l2 I_U + X X^T ([U, U]):
      P = (1 / l2) (I - X^T K^-1 X),   diag(P)_i = (1 - q_i) / l2,   q_i = x_i^T K^-1 x_i
    where x_i is item i's column. Since X X^T = K - l2 I, the training rows of X P collapse
    to X P = K^-1 X, so a block of (training) users costs one sparse product:
      score_u = x_u B = x_u - (x_u P) / diag(P) = x_u - l2 (K^-1 X)_u / (1 - q).
    The x_u term removes exactly the j = i contribution x_ui P_ii / P_ii, which is what
    B_ii = 0 means; no I x I matrix is ever formed.
    """

    name = EASE_NAME

    def __init__(self, l2: float = 500.0, solver: str = "auto") -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        if solver not in ("auto", "dense", "woodbury"):
            raise ValueError(f"unknown solver {solver!r}")
        self.l2 = l2
        self.solver = solver
        self.train = None  # [U, I] binary csr, float64
        self.train_t = None  # Woodbury path: [I, U] csr, X^T
        self.weights = None  # dense path: [I, I] B
        self.kernel_inverse = None  # Woodbury path: [U, U] K^-1
        self.inverse_diagonal = None  # Woodbury path: [I] 1 / diag(P) = l2 / (1 - q)

    def fit(self, train: sp.csr_matrix) -> "EASE":
        x = _binary(train)
        num_users, num_items = x.shape
        self.train = x
        self.train_t = self.weights = self.kernel_inverse = self.inverse_diagonal = None
        use_woodbury = (self.solver == "woodbury"
                        or (self.solver == "auto" and num_users < num_items))
        if use_woodbury:
            self._fit_woodbury(x)
        else:
            self._fit_dense(x)
        return self

    def _fit_dense(self, x: sp.csr_matrix) -> None:
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        # Gram + l2 I is symmetric positive definite: Cholesky is faster and stabler than LU.
        p = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram, overwrite_a=True),
                                   np.eye(gram.shape[0]), overwrite_b=True)
        weights = p / -np.diag(p)
        np.fill_diagonal(weights, 0.0)
        self.weights = weights

    def _fit_woodbury(self, x: sp.csr_matrix) -> None:
        kernel = (x @ x.T).toarray()
        kernel[np.diag_indices_from(kernel)] += self.l2
        kernel_inverse = scipy.linalg.cho_solve(
            scipy.linalg.cho_factor(kernel, overwrite_a=True), np.eye(kernel.shape[0]),
            overwrite_b=True)
        # q_i = x_i^T K^-1 x_i. X^T K^-1 is sparse-times-dense (nnz x U flops); doing it for a
        # block of items at a time keeps the dense part at [block, U] instead of [I, U].
        items_t = x.T.tocsr()
        q = np.empty(x.shape[1])
        block = max(1, (1 << 22) // max(1, x.shape[0]))
        for start in range(0, x.shape[1], block):
            columns = items_t[start:start + block]
            projected = columns @ kernel_inverse
            q[start:start + block] = np.asarray(columns.multiply(projected).sum(axis=1)).ravel()
        self.train_t = items_t
        self.kernel_inverse = kernel_inverse
        self.inverse_diagonal = self.l2 / (1.0 - q)

    def scores(self, users: np.ndarray) -> np.ndarray:
        _check_fitted(self, "train")
        x_u = self.train[users]
        if self.weights is not None:
            return np.asarray(x_u @ self.weights, dtype=np.float32)
        # x_u P = (K^-1 X)_u, computed as (X^T (K^-1)_u^T)^T: scipy's CSR-times-dense kernel
        # is the fast direction, and only an [n, U] slice of K^-1 is touched.
        projected = np.asarray(self.train_t @ self.kernel_inverse[users].T).T
        scores = np.ascontiguousarray(projected) * -self.inverse_diagonal[None, :]
        x_u = x_u.tocoo()
        scores[x_u.row, x_u.col] += 1.0
        return scores.astype(np.float32)


class IALS:
    """Implicit-feedback ALS via implicit's CPU solver (conjugate gradient).

    Args mirror implicit.cpu.als.AlternatingLeastSquares. In implicit >= 0.5 the confidence
    of a positive entry is alpha * value (so alpha = 1 weighs observed and unobserved entries
    alike on binary data). Training runs on 2 threads with BLAS limited to 1 thread, as
    implicit recommends: its own threads and a BLAS threadpool would oversubscribe the cores.
    """

    name = IALS_NAME
    num_threads = 2

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0) -> None:
        if not IALS_AVAILABLE:
            raise ImportError("IALS needs the `implicit` package")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.user_factors = None  # [U, factors] float32
        self.item_factors = None  # [I, factors] float32

    def fit(self, train: sp.csr_matrix) -> "IALS":
        x = _binary(train, dtype=np.float32)
        # The model checks the BLAS configuration when constructed, so build it under the
        # limit too, otherwise it warns about OpenBLAS threads.
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            model = _ImplicitALS(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, random_state=self.seed,
                num_threads=self.num_threads)
            model.fit(x, show_progress=False)  # implicit >= 0.5: [users, items]
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        _check_fitted(self, "user_factors")
        return self.user_factors[users] @ self.item_factors.T


class Params(dict):
    """An immutable, hashable dict of keyword arguments, usable as a grid value.

    `tune` keys its result by grid value, so values must be hashable. A Params can also be
    splatted into a constructor (``IALS(**params, seed=0)``), serialises with `json` as an
    object, and prints as ``factors=64, regularization=0.1, alpha=10.0`` (a readable key).
    """

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self.items())

    def __reduce__(self):
        # dict's default pickling refills through __setitem__, which is disabled.
        return (Params, (dict(self),))

    def _immutable(self, *args: Any, **kwargs: Any) -> None:
        # A hashed value that changed would be lost as a dict key.
        raise TypeError("Params is immutable")

    __setitem__ = __delitem__ = __ior__ = _immutable  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _immutable  # type: ignore[assignment]


def recommend(model: Recommender, users: np.ndarray, exclude: sp.csr_matrix,
              k: int) -> np.ndarray:
    """[len(users), k] top-k items per user, never an item stored in that user's exclude row.

    Args:
      model: a fitted Recommender.
      users: [n] user indices.
      exclude: [n, I] sparse matrix aligned with `users` (row r belongs to users[r]).
      k: list length.

    Scores are computed in blocks of users so that memory stays at [block, I].
    """
    users = np.asarray(users)
    exclude = sp.csr_matrix(exclude)
    if exclude.shape[0] != len(users):
        raise ValueError(f"exclude has {exclude.shape[0]} rows for {len(users)} users")
    result = np.empty((len(users), k), dtype=np.int64)
    for start in range(0, len(users), _SCORE_BLOCK_USERS):
        stop = min(start + _SCORE_BLOCK_USERS, len(users))
        result[start:stop] = ranking_metrics.top_k(
            model.scores(users[start:stop]), exclude[start:stop], k)
    return result


def tune(factory: Callable[[Any], Recommender], grid: Sequence[Any], train: sp.csr_matrix,
         validation: sp.csr_matrix, k: int = 10) -> Tuple[Any, Dict[Any, float]]:
    """Grid search on validation Recall@k.

    Fits factory(value) on `train` for each value, ranks for every user with at least one
    validation item (excluding their train items) and scores Recall@k against `validation`.

    Returns:
      (best value, {value: validation recall@k}); ties go to the earliest value in `grid`.
    """
    if not grid:
        raise ValueError("empty grid")
    for value in grid:
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"grid value {value!r} is not hashable; use baselines.Params "
                            "for keyword sets") from None
    train = sp.csr_matrix(train)
    validation = sp.csr_matrix(validation)
    users = np.nonzero(np.diff(validation.indptr) > 0)[0]
    if not len(users):
        raise ValueError("no user has a validation item")
    recalls = {}
    for value in grid:
        model = factory(value).fit(train)
        top = recommend(model, users, train[users], k)
        recalls[value] = ranking_metrics.ranking_metrics(top, validation[users], k)[f"recall@{k}"]
    best = grid[0]
    for value in grid:
        if recalls[value] > recalls[best]:  # strict: an equal later value never wins
            best = value
    return best, recalls


# Grid values must be hashable (they key tune's result); iALS values are Params of IALS
# keyword arguments. The ranges bracket the validation optimum seen on Last.fm HetRec 8:1:1
# splits (EASE near l2 = 50-100; kNN plateaus from 800 neighbours, where pruning barely
# bites since under 2% of items co-occur with more; iALS near 32-64 factors with alpha = 10)
# with values on each side, at a few seconds per fit there.
DEFAULT_GRIDS: Dict[str, Sequence[Any]] = {
    ITEM_KNN: [25, 50, 100, 200, 400, 800, 1600, 3200],
    EASE_NAME: [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0],
    IALS_NAME: [Params(factors=factors, regularization=regularization, alpha=alpha)
                for factors, regularization, alpha in [
                    (32, 1.0, 10.0), (64, 1.0, 5.0), (64, 1.0, 10.0), (64, 10.0, 10.0),
                    (128, 10.0, 10.0), (128, 30.0, 20.0)]],
}

# How the benchmark turns a grid value into a model (most-popular has no hyperparameter).
FACTORIES: Dict[str, Callable[[Any], Recommender]] = {
    MOST_POPULAR: lambda _: MostPopular(),
    ITEM_KNN: lambda neighbours: ItemKNN(neighbours=neighbours),
    EASE_NAME: lambda l2: EASE(l2=l2),
    IALS_NAME: lambda params: IALS(**params),
}
