"""Same-label retrieval metrics, the cosine head, the collapse guard and format-1 artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_reco.config import ModelConfig
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.metrics import mean_pairwise_cosine, retrieval_metrics
from fashion_reco.model.network import CosineClassifier, EmbeddingHead, build_resnet18, head_spec


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(q: np.ndarray, ql: np.ndarray, c: np.ndarray, cl: np.ndarray, pos: np.ndarray | None, k: int):
    """One query at a time, the obvious way."""
    precisions, hit1, hitk = [], [], []
    for i in range(q.shape[0]):
        scores = c @ q[i]
        order = [j for j in np.argsort(-scores, kind="stable") if pos is None or j != pos[i]][:k]
        same = cl[order] == ql[i]
        precisions.append(same.mean())
        hit1.append(same[0])
        hitk.append(same.any())
    return np.mean(precisions), np.mean(hit1), np.mean(hitk)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 60),
    n_classes=st.integers(1, 5),
    k=st.integers(1, 12),
    block=st.integers(1, 70),
)
def test_retrieval_metrics_match_a_per_query_loop(
    seed: int, n: int, n_classes: int, k: int, block: int
) -> None:
    rng = np.random.default_rng(seed)
    x = _unit(rng, n, 8)
    labels = rng.integers(0, n_classes, n)
    ours = retrieval_metrics(x, labels, k=k, block=block)  # queries are their own corpus: self excluded
    k_eff = min(k, n - 1)
    p, r1, rk = _brute(x, labels, x, labels, np.arange(n), k_eff)
    assert ours.k == k_eff and ours.n_corpus == n - 1
    assert ours.precision_at_k == pytest.approx(p)
    assert ours.recall_at_1 == pytest.approx(r1)
    assert ours.recall_at_k == pytest.approx(rk)
    counts = np.bincount(labels)
    assert ours.chance_precision == pytest.approx(np.mean((counts[labels] - 1) / (n - 1)))


def test_queries_against_a_larger_corpus_skip_only_themselves() -> None:
    rng = np.random.default_rng(1)
    corpus = _unit(rng, 50, 16)
    labels = np.array(["dress", "hat"] * 25)
    picked = np.array([3, 10, 41])
    ours = retrieval_metrics(corpus[picked], labels[picked], corpus, labels, query_positions=picked, k=10)
    p, r1, rk = _brute(corpus[picked], labels[picked], corpus, labels, picked, 10)
    assert (ours.precision_at_k, ours.recall_at_1, ours.recall_at_k) == pytest.approx((p, r1, rk))
    perfect = np.repeat(np.eye(2, 16, dtype=np.float32), 5, axis=0)  # two tight clusters
    assert retrieval_metrics(perfect, [0] * 5 + [1] * 5, k=4).precision_at_k == 1.0
    with pytest.raises(ValueError, match="one label"):
        retrieval_metrics(corpus, labels[:3])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40))
def test_mean_pairwise_cosine_is_the_mean_over_distinct_pairs(seed: int, n: int) -> None:
    x = _unit(np.random.default_rng(seed), n, 6)
    gram = x.astype(np.float64) @ x.T.astype(np.float64)
    expected = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    assert mean_pairwise_cosine(x) == pytest.approx(expected, abs=1e-9)
    assert mean_pairwise_cosine(np.repeat(x[:1], n, axis=0)) == pytest.approx(1.0)


def test_cosine_head_serves_the_normalised_layer_the_loss_sees() -> None:
    torch.manual_seed(0)
    net = build_resnet18(4, head="cosine", scale=10.0, margin=0.2).eval()
    assert isinstance(net.fc, CosineClassifier) and net.fc.out_features == 4
    images = torch.rand(6, 3, 32, 32)
    embeddings, logits = EmbeddingHead(net)(images)
    assert embeddings.shape == (6, 512)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(6))
    weights = torch.nn.functional.normalize(net.fc.weight, dim=1)
    torch.testing.assert_close(
        logits, 10.0 * embeddings @ weights.t()
    )  # logits = scale · cos(embedding, class)
    torch.testing.assert_close(net(images), logits)
    # the margin lowers only the true class's logit, and only while training
    features = torch.randn(6, 512)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    plain, margined = net.fc(features), net.fc.training_logits(features, labels)
    true = torch.nn.functional.one_hot(labels, 4).bool()
    assert (margined[true] < plain[true]).all() and torch.equal(margined[~true], plain[~true])
    assert head_spec(net) == {"type": "cosine", "scale": 10.0, "margin": 0.2}


def test_cosine_model_round_trips_and_format_1_linear_models_still_load(
    few_photos: list[Path], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = ImageModel.untrained(
        ["a", "b", "c"], ModelConfig(image_size=32, cosine_scale=20.0, angular_margin=0.3)
    )
    model.save(tmp_path / "cosine")
    meta = json.loads((tmp_path / "cosine" / "metadata.json").read_text())
    assert meta["format_version"] == 2 and meta["head"] == {"type": "cosine", "scale": 20.0, "margin": 0.3}
    loaded = ImageModel.load(tmp_path / "cosine")
    np.testing.assert_allclose(loaded.embed(few_photos[:4]), model.embed(few_photos[:4]), atol=1e-5)
    # a format-1 artefact (linear head, no "head" key) written by an earlier version
    linear = ImageModel.untrained(["a", "b", "c"], ModelConfig(image_size=32, head="linear"))
    linear.save(tmp_path / "v1")
    meta = json.loads((tmp_path / "v1" / "metadata.json").read_text())
    meta["format_version"] = 1
    del meta["head"]
    (tmp_path / "v1" / "metadata.json").write_text(json.dumps(meta))
    old = ImageModel.load(tmp_path / "v1")
    assert isinstance(old.net.fc, torch.nn.Linear)
    np.testing.assert_allclose(old.embed(few_photos[:4]), linear.embed(few_photos[:4]), atol=1e-5)
