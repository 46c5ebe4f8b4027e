"""Transfer learning on the real clothing photos (random init, 64 px, a few hundred images) and the training recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashion_reco.config import DataConfig, ModelConfig
from fashion_reco.errors import ModelError
from fashion_reco.model.image_model import ImageModel
from fashion_reco.model.training import split_for_training, train_classifier, train_head_on_embeddings


@pytest.fixture(scope="module")
def clothing(clothing_dir: Path):  # type: ignore[no-untyped-def]
    from fashion_reco.data.datasets import load_clothing

    return load_clothing(clothing_dir.parent)


@pytest.mark.slow
def test_training_beats_chance_on_held_out_test_split(clothing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = ModelConfig(
        image_size=64,
        weights=None,
        head_epochs=0,
        finetune_epochs=3,
        max_train_images=600,
        batch_size=32,
        lr_backbone=1e-3,
        lr_head=1e-3,
        augment=False,
        patience=3,
        seed=0,
    )
    model = ImageModel.train(clothing, config, data_config=DataConfig(num_workers=1), progress=False)
    chance = 1 / len(clothing.classes)
    test = model.metrics["test"]
    assert test.n == 372 and test.classes == clothing.classes
    assert test.macro_f1 > chance + 0.1, test.summary()
    assert test.accuracy > 0.25
    assert len(model.history) == 3 and model.training["n_train"] == 600
    assert model.training["n_validation"] == 341 and model.training["n_test"] == 372
    assert model.history[-1]["train_loss"] < model.history[0]["train_loss"]
    assert model.metrics["validation"].macro_f1 == max(h["val_macro_f1"] for h in model.history)
    # "more like this": the test photos against every photo of the run, by the served (cosine-head) embedding
    retrieval = test.retrieval
    assert retrieval is not None and retrieval.n_queries == 372 and retrieval.n_corpus == 600 + 341 + 372 - 1
    assert retrieval.precision_at_k > retrieval.chance_precision + 0.1, retrieval
    assert model.metrics["validation"].retrieval is not None
    assert model.training["collapsed"] is False
    model.save(tmp_path)
    assert ImageModel.load(tmp_path).metrics["test"] == test


def _frame(n_per_class: dict[str, int], split: str | None = None) -> pd.DataFrame:
    rows = [
        (f"{label}-{i}", f"/x/{label}-{i}.jpg", label) for label, n in n_per_class.items() for i in range(n)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "image_path", "label"])
    if split is not None:
        frame["split"] = split
    return frame


def test_split_rules() -> None:
    config = ModelConfig(validation_fraction=0.2, seed=1)
    train, val, test = split_for_training(_frame({"a": 50, "b": 10, "c": 1}), config)
    assert val["label"].value_counts().to_dict() == {"a": 10, "b": 2}
    assert len(train) == 49 and test.empty
    frame = pd.concat(
        [
            _frame({"a": 30, "b": 30}, "train"),
            _frame({"a": 3, "b": 3}, "validation"),
            _frame({"a": 4}, "test"),
        ]
    )
    frame["item_id"] = range(len(frame))
    train, val, test = split_for_training(frame, ModelConfig(max_train_images=10))
    assert len(val) == 6 and len(test) == 4
    assert train["label"].value_counts().to_dict() == {"a": 5, "b": 5}
    unlabelled = _frame({"a": 5}).assign(label=None)
    assert split_for_training(unlabelled, config)[0].empty


@pytest.fixture(scope="module")
def tiny_catalogue(clothing):  # type: ignore[no-untyped-def]
    items = clothing.items
    picked = items[items["split"] == "train"].groupby("label").head(4)
    return picked.assign(split=None)  # no splits: validation is carved out of train, nothing is held out


def _tiny_config(**overrides: object) -> ModelConfig:
    values = {
        "image_size": 32,
        "head_epochs": 1,
        "finetune_epochs": 1,
        "batch_size": 16,
        "augment": True,
        "seed": 3,
    }
    return ModelConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for pretrained weights (random, but it makes the frozen-backbone head phase run)."""
    from torchvision.models import resnet18

    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("weights") / "backbone.pt"
    torch.save(resnet18().state_dict(), path)
    return path


def test_training_is_reproducible(tiny_catalogue: pd.DataFrame, backbone_file: Path) -> None:
    config = _tiny_config(weights=str(backbone_file))
    runs = [train_classifier(tiny_catalogue, config, num_workers=1, progress=False) for _ in range(2)]
    first, second = runs
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in second.history]
    for (name, a), b in zip(first.net.state_dict().items(), second.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [h["phase"] for h in first.history] == ["head", "finetune"]
    assert first.test_metrics is None and first.n_validation == 10


def test_time_budget_and_sampler(tiny_catalogue: pd.DataFrame) -> None:
    config = _tiny_config(head_epochs=2, finetune_epochs=3, max_train_seconds=0.01, class_balancing="sampler")
    result = train_classifier(tiny_catalogue, config, num_workers=0, progress=False)
    assert len(result.history) == 1 and result.stopped_reason.startswith("time budget")
    assert result.best_epoch == 1
    assert result.history[0]["phase"] == "finetune", "no pretrained weights: the head phase is skipped"


def test_time_budget_is_checked_after_every_batch_not_only_per_epoch(tiny_catalogue: pd.DataFrame) -> None:
    config = _tiny_config(finetune_epochs=3, batch_size=8, max_train_seconds=0.01)
    result = train_classifier(tiny_catalogue, config, num_workers=0, progress=False)
    assert "during epoch 1" in result.stopped_reason
    assert result.history[0]["images"] == 8, "one batch, then the spent budget stops the epoch"
    assert result.history[0]["val_macro_f1"] is not None, "a stopped epoch is still validated"


def test_collapse_guard_warns_and_flags(tiny_catalogue: pd.DataFrame) -> None:
    from fashion_reco.model.training import EmbeddingCollapseWarning

    config = _tiny_config(collapse_threshold=0.01)  # 4 photos a class, one epoch: nearly identical embeddings
    with pytest.warns(EmbeddingCollapseWarning, match="mean pairwise cosine"):
        result = train_classifier(tiny_catalogue, config, num_workers=0, progress=False)
    assert result.collapsed and result.embedding_mean_cosine is not None
    assert result.embedding_mean_cosine > 0.01
    assert result.validation_metrics is not None and result.validation_metrics.retrieval is not None
    assert result.history[0]["val_precision_at_10"] == result.validation_metrics.retrieval.precision_at_k


def test_training_input_errors(tiny_catalogue: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="2 classes"):
        train_classifier(tiny_catalogue[tiny_catalogue["label"] == "hat"], _tiny_config(), progress=False)
    with pytest.raises(ModelError, match="image_path"):
        train_classifier(tiny_catalogue.drop(columns="image_path"), _tiny_config(), progress=False)


def test_head_on_embeddings_is_fast_and_learns() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 512))
    labels = np.repeat([f"c{i}" for i in range(5)], 60)
    x = centres[np.repeat(np.arange(5), 60)] + rng.normal(scale=3.0, size=(300, 512))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = rng.permutation(300)
    train, val = order[:200], order[200:]
    result = train_head_on_embeddings(x[train], labels[train], validation=(x[val], labels[val]), epochs=150)
    assert result.validation_metrics is not None and result.validation_metrics.macro_f1 > 0.9
    assert (result.predict(x[val]) == labels[val]).mean() > 0.9
    again = train_head_on_embeddings(x[train], labels[train], validation=(x[val], labels[val]), epochs=150)
    assert torch.equal(again.head.weight, result.head.weight)
    with pytest.raises(ModelError):
        train_head_on_embeddings(x[:3], labels[:2])
