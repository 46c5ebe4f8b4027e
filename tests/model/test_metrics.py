"""Numpy classification metrics agree with scikit-learn (zero_division=0, all classes in the macro average)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from fashion_reco.model.metrics import classification_metrics


@pytest.mark.parametrize("seed", range(8))
def test_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    n = int(rng.integers(1, 300))
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, k, n))
    classes = [f"c{i}" for i in range(k)]
    ours = classification_metrics(y_true, y_pred, classes)
    labels = list(range(k))
    assert ours.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert ours.macro_f1 == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(classes):
        m = ours.per_class[name]
        assert (m.precision, m.recall, m.f1) == pytest.approx((p[i], r[i], f[i]))
        assert m.support == s[i]
    np.testing.assert_array_equal(
        np.array(ours.confusion), skm.confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert ours.n == n


def test_string_labels_absent_and_never_predicted_classes() -> None:
    result = classification_metrics(
        ["hat", "hat", "skirt"], ["hat", "skirt", "skirt"], ["dress", "hat", "skirt"]
    )
    assert result.per_class["dress"].f1 == 0 and result.per_class["dress"].support == 0
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.macro_f1 == pytest.approx((0 + 2 / 3 + 2 / 3) / 3)
    assert result.confusion == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert "macro-F1" in result.summary() and result.to_dict()["classes"] == ["dress", "hat", "skirt"]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="not among the classes"):
        classification_metrics(["a"], ["z"], ["a", "b"])
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 5], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="y_pred has"):
        classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [], [])
