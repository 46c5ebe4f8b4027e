"""Classification metrics with numpy only (no scikit-learn at run time; the tests check against it).

Conventions match ``sklearn.metrics`` with ``labels=range(len(classes))`` and ``zero_division=0``: a class never
predicted has precision 0, a class absent from ``y_true`` has recall 0, and macro-F1 averages over *all* classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

__all__ = ["ClassMetrics", "ClassificationMetrics", "classification_metrics", "confusion_matrix"]


class ClassMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class ClassificationMetrics(BaseModel):
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = true class)."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]] = Field(description="confusion[i][j]: true class i predicted as class j")
    classes: list[str]
    n: int

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
