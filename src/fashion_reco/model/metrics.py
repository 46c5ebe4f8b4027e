"""Classification metrics with numpy only (no scikit-learn at run time; the tests check against it).

Conventions match ``sklearn.metrics`` with ``labels=range(len(classes))`` and ``zero_division=0``: a class never
predicted has precision 0, a class absent from ``y_true`` has recall 0, and macro-F1 averages over *all* classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

__all__ = [
    "ClassMetrics",
    "ClassificationMetrics",
    "RetrievalMetrics",
    "classification_metrics",
    "confusion_matrix",
    "mean_pairwise_cosine",
    "retrieval_metrics",
]


class ClassMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class RetrievalMetrics(BaseModel):
    """ "More like this" quality of embeddings, judged by labels: does a photo's nearest neighbour share its class?

    For each query, the corpus (minus the query itself) is ranked by cosine. ``precision_at_k``: mean share of the
    top ``k`` with the query's label; ``recall_at_1`` / ``recall_at_k``: share of queries with at least one same-label
    item in the top 1 / ``k`` (the Recall@K of the deep metric learning literature); ``chance_precision``: the
    precision@k a random ranking would get (mean share of same-label items in the corpus); ``mean_cosine``: mean
    pairwise cosine of the query embeddings (near 1 = collapsed).
    """

    k: int
    precision_at_k: float
    recall_at_1: float
    recall_at_k: float
    chance_precision: float
    mean_cosine: float
    n_queries: int
    n_corpus: int


class ClassificationMetrics(BaseModel):
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = true class).

    ``retrieval`` holds the same split's :class:`RetrievalMetrics` when training measured them (None in older
    models).
    """

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]] = Field(description="confusion[i][j]: true class i predicted as class j")
    classes: list[str]
    n: int
    retrieval: RetrievalMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def summary(self) -> str:
        width = max((len(c) for c in self.classes), default=5)
        lines = [f"accuracy {self.accuracy:.3f}  macro-F1 {self.macro_f1:.3f}  (n={self.n})"]
        lines.append(f"{'class':<{width}}  precision  recall     f1  support")
        for name, m in self.per_class.items():
            lines.append(f"{name:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}  {m.support:7d}")
        return "\n".join(lines)


def _as_indices(values: Sequence[Any] | np.ndarray, classes: Sequence[str], what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < 0 or array.max() >= len(classes)):
            raise ValueError(f"{what} holds class indices outside 0..{len(classes) - 1}")
        return array.astype(np.int64)
    lookup = {name: i for i, name in enumerate(classes)}
    try:
        return np.fromiter((lookup[str(v)] for v in array), dtype=np.int64, count=array.size)
    except KeyError as exc:
        raise ValueError(f"{what} holds a label not among the classes: {exc.args[0]!r}") from None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[k, k]`` int64 counts via one ``np.bincount`` (rows: true class, columns: predicted class)."""
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray, classes: Sequence[str]
) -> ClassificationMetrics:
    """Metrics for true vs predicted classes given as indices into ``classes`` or as label strings."""
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes must not be empty")
    true = _as_indices(y_true, classes, "y_true")
    pred = _as_indices(y_pred, classes, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} values but y_pred has {pred.size}")
    k = len(classes)
    cm = confusion_matrix(true, pred, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    n = int(true.size)
    return ClassificationMetrics(
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=float(f1.mean()),
        per_class={
            name: ClassMetrics(
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i, name in enumerate(classes)
        },
        confusion=cm.tolist(),
        classes=classes,
        n=n,
    )


def mean_pairwise_cosine(embeddings: np.ndarray) -> float:
    """Mean cosine over all ``i != j`` pairs of L2-normalised rows, in O(n·d): ``(‖Σ e‖² − n) / (n (n − 1))``."""
    e = np.asarray(embeddings, dtype=np.float64)
    n = e.shape[0]
    if n < 2:
        return float("nan")
    total = e.sum(axis=0)
    return float((total @ total - np.einsum("ij,ij->", e, e)) / (n * (n - 1)))


def retrieval_metrics(
    queries: np.ndarray,
    query_labels: Sequence[Any] | np.ndarray,
    corpus: np.ndarray | None = None,
    corpus_labels: Sequence[Any] | np.ndarray | None = None,
    *,
    query_positions: Sequence[int] | np.ndarray | None = None,
    k: int = 10,
    block: int = 1024,
) -> RetrievalMetrics:
    """Same-label precision@k and Recall@1/@k of ``queries`` against ``corpus`` by cosine (rows L2-normalised).

    Without ``corpus`` the queries are their own corpus. ``query_positions[i]`` is query ``i``'s row in the corpus
    (it is never its own neighbour); when the queries are their own corpus that is ``arange``. Vectorised: one
    matrix product and one ``argpartition`` per block of ``block`` queries.
    """
    q = np.asarray(queries, dtype=np.float32)
    q_labels = np.asarray(query_labels)
    positions: np.ndarray | None
    if corpus is None:
        c, c_labels = q, q_labels
        positions = np.arange(q.shape[0]) if query_positions is None else np.asarray(query_positions)
    else:
        c = np.asarray(corpus, dtype=np.float32)
        c_labels = np.asarray(corpus_labels if corpus_labels is not None else [])
        positions = None if query_positions is None else np.asarray(query_positions)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries {q.shape} and corpus {c.shape} must be 2-d with the same width")
    if q_labels.shape[0] != q.shape[0] or c_labels.shape[0] != c.shape[0]:
        raise ValueError("one label per query and per corpus row is needed")
    if positions is not None and positions.shape[0] != q.shape[0]:
        raise ValueError(f"{positions.shape[0]} query positions for {q.shape[0]} queries")
    n_corpus = c.shape[0] - (1 if positions is not None else 0)
    if q.shape[0] == 0 or n_corpus < 1:
        raise ValueError("retrieval metrics need at least one query and one other corpus row")
    k = int(min(k, n_corpus))
    # labels → shared integer codes, so comparisons are integer ops
    _, codes = np.unique(np.concatenate([q_labels.astype(str), c_labels.astype(str)]), return_inverse=True)
    q_codes, c_codes = codes[: q.shape[0]], codes[q.shape[0] :]
    hits_at_k = np.empty(q.shape[0], dtype=np.int64)
    hit_at_1 = np.empty(q.shape[0], dtype=bool)
    for start in range(0, q.shape[0], block):
        stop = min(start + block, q.shape[0])
        scores = q[start:stop] @ c.T
        if positions is not None:
            scores[np.arange(stop - start), positions[start:stop]] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        same = c_codes[top] == q_codes[start:stop, None]
        hits_at_k[start:stop] = same.sum(axis=1)
        hit_at_1[start:stop] = same[:, 0]
    counts = np.bincount(c_codes, minlength=codes.max() + 1)
    same_in_corpus = counts[q_codes] - (1 if positions is not None else 0)
    return RetrievalMetrics(
        k=k,
        precision_at_k=float(hits_at_k.mean() / k),
        recall_at_1=float(hit_at_1.mean()),
        recall_at_k=float((hits_at_k > 0).mean()),
        chance_precision=float(np.mean(same_in_corpus / n_corpus)),
        mean_cosine=mean_pairwise_cosine(q),
        n_queries=int(q.shape[0]),
        n_corpus=int(n_corpus),
    )
