"""Transfer learning of ResNet18 onto a catalogue's own classes, within a wall-clock budget.

Recipe (``ModelConfig`` names in brackets):

1. **Splits.** Training rows are ``split == "train"`` (or every labelled row when there is no ``split`` column, or
   rows whose split is empty). Validation rows are ``split == "validation"`` when present, else a stratified
   ``validation_fraction`` of the training rows. ``split == "test"`` rows are held out and only scored at the end.
   ``max_train_images`` subsamples the training rows, stratified by class.
2. **Phase 1 — head** (``head_epochs``): a new ``fc`` layer for the catalogue's classes trained on a frozen backbone
   (BatchNorm statistics frozen too; the backbone runs under ``no_grad`` so an epoch costs about one forward pass).
   Skipped when there are no pretrained weights (``weights=None``): a frozen random backbone teaches the head nothing.
3. **Phase 2 — fine-tune** (``finetune_epochs``): everything trains, the backbone at ``lr_backbone`` and the head at
   ``lr_head``. Both phases use AdamW (``weight_decay``) with a one-cycle cosine schedule; the fine-tuning schedule
   is *budgeted*: it advances by planned steps or by the share of ``max_train_seconds`` spent, whichever is ahead, so
   a run cut short by the budget still ends annealed. The loss is cross-entropy with ``label_smoothing`` on the head
   chosen by ``head`` (default: the cosine head of :mod:`fashion_reco.model.network`, with ``angular_margin``).
4. **Class imbalance** (``class_balancing``): inverse-frequency class weights in the loss (``"weighted_loss"``), or a
   ``WeightedRandomSampler`` drawing classes evenly (``"sampler"``), or nothing.
5. **Early stopping** on validation macro-F1 with ``patience`` epochs (counted within a phase), a wall-clock budget
   ``max_train_seconds`` for the whole call (checked after every batch: training stops mid-epoch once what is left
   no longer covers the evaluation passes still due — validation, test, and the training photos for the test's
   retrieval metrics — estimated at a third of the measured time per training photo), and the best epoch's weights
   restored.
6. **Decoded once** (``pixel_cache_mb``): when the train, validation and test photos fit the cap, they are decoded
   once into a :class:`~fashion_reco.data.dataset.PixelCache` (eval resize, uint8) and every epoch's batches come
   from memory, augmented by batched tensor ops (:mod:`fashion_reco.model.pixel_batches`); validation and the final
   test / catalogue passes read the same cache (the exact eval crops). Above the cap photos stream from disk through
   DataLoader workers every epoch. Building the cache counts against the budget.
7. **Reproducible**: ``seed`` seeds torch, the split / subsample RNG, and the loaders' generator (shuffling,
   sampling and per-worker augmentation seeds). Same machine, same thread count, same result.

:func:`train_head_on_embeddings` is the cheap mode: a linear head on cached 512-d embeddings, in seconds.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler
from torchvision.models import ResNet
from tqdm.auto import tqdm

from fashion_reco.columns import Columns
from fashion_reco.config import DataConfig, ModelConfig
from fashion_reco.data.dataset import (
    BadImage,
    ImageBatch,
    ImageLoader,
    PixelCache,
    make_loader,
    single_threaded_torch,
)
from fashion_reco.data.images import ImagePolicy
from fashion_reco.data.transforms import PreprocessSpec
from fashion_reco.errors import ModelError
from fashion_reco.model.metrics import (
    ClassificationMetrics,
    RetrievalMetrics,
    classification_metrics,
    mean_pairwise_cosine,
    retrieval_metrics,
)
from fashion_reco.model.network import (
    backbone_parameters,
    build_resnet18,
    default_device,
    embed_features,
    embedding_trunk,
    logits_for_training,
)
from fashion_reco.model.pixel_batches import CachedBatches
from fashion_reco.model.threads import torch_threads
from fashion_reco.model.weights import resolve_weights

__all__ = [
    "EmbeddingCollapseWarning",
    "HeadResult",
    "TrainResult",
    "split_for_training",
    "train_classifier",
    "train_head_on_embeddings",
]

log = logging.getLogger(__name__)

RETRIEVAL_K = 10


class EmbeddingCollapseWarning(UserWarning):
    """The trained model's embeddings are nearly identical: "more like this" would return random neighbours."""


@dataclass
class TrainResult:
    """What :func:`train_classifier` produced: the network (best epoch restored) and how it got there."""

    net: ResNet
    classes: list[str]
    preprocess: PreprocessSpec
    history: list[dict[str, Any]]
    validation_metrics: ClassificationMetrics | None
    test_metrics: ClassificationMetrics | None
    best_epoch: int | None
    stopped_reason: str
    seconds: float
    n_train: int
    n_validation: int
    n_test: int
    failed_images: list[BadImage] = field(default_factory=list)
    embedding_mean_cosine: float | None = None
    collapsed: bool = False

    @property
    def metrics(self) -> dict[str, ClassificationMetrics]:
        """``{"validation": ..., "test": ...}`` for the splits that exist."""
        out = {}
        if self.validation_metrics is not None:
            out["validation"] = self.validation_metrics
        if self.test_metrics is not None:
            out["test"] = self.test_metrics
        return out


# -- splits -----------------------------------------------------------------------------------------------------------


def _stratified_pick(
    labels: np.ndarray, fraction: float, rng: np.random.Generator, *, min_per_class: int
) -> np.ndarray:
    """Boolean mask picking about ``fraction`` of each class (at least ``min_per_class`` where it has more)."""
    mask = np.zeros(labels.shape[0], dtype=bool)
    for value in np.unique(labels):
        positions = np.flatnonzero(labels == value)
        count = positions.size
        take = max(min_per_class, round(count * fraction)) if count > min_per_class else 0
        take = min(take, count)
        if take:
            mask[rng.choice(positions, size=take, replace=False)] = True
    return mask


def _stratified_exact(labels: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of exactly ``total`` rows, allocated to classes by largest remainder (every class keeps >= 1)."""
    values, counts = np.unique(labels, return_counts=True)
    quotas = counts * (total / labels.size)
    take = np.maximum(np.floor(quotas).astype(np.int64), 1)
    remainders = quotas - np.floor(quotas)
    for i in np.argsort(-remainders, kind="stable"):
        if take.sum() >= total:
            break
        if take[i] < counts[i]:
            take[i] += 1
    while take.sum() > total and (take > 1).any():  # the >= 1 floor overshot: trim the largest classes
        take[np.argmax(take)] -= 1
    mask = np.zeros(labels.size, dtype=bool)
    for value, n in zip(values, take, strict=True):
        positions = np.flatnonzero(labels == value)
        mask[rng.choice(positions, size=min(int(n), positions.size), replace=False)] = True
    return mask


def split_for_training(
    items: pd.DataFrame, config: ModelConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(train, validation, test)`` frames per the module docstring (rows without a label are ignored)."""
    frame = items[items[Columns.LABEL].notna()]
    if Columns.SPLIT in frame.columns:
        split = frame[Columns.SPLIT].astype("string").str.lower()
        train = frame[split.isna() | (split == "train") | (split == "")]
        validation = frame[split == "validation"]
        test = frame[split == "test"]
    else:
        train, validation, test = frame, frame.iloc[:0], frame.iloc[:0]
    rng = np.random.default_rng(config.seed)
    if validation.empty and len(train) >= 10:
        pick = _stratified_pick(
            train[Columns.LABEL].astype(str).to_numpy(), config.validation_fraction, rng, min_per_class=1
        )
        validation, train = train[pick], train[~pick]
    if config.max_train_images is not None and len(train) > config.max_train_images:
        pick = _stratified_exact(train[Columns.LABEL].astype(str).to_numpy(), config.max_train_images, rng)
        train = train[pick]
    return train, validation, test


# -- helpers ----------------------------------------------------------------------------------------------------------


def _class_weights(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


class _BudgetedOneCycle:
    """One-cycle learning rate (cosine warm-up over the first 20 %, cosine annealing to ~0) driven by progress.

    Progress is the larger of the share of planned steps done and the share of the phase's wall-clock budget spent,
    so a run that the budget cuts short still ends annealed instead of at its peak rate: on a slow or busy machine
    the same configuration trains fewer epochs but finishes its schedule (Li et al. 2020, "Budgeted Training:
    Rethinking Deep Neural Network Training Under Resource Constraints": schedules that decay to zero by the budget
    beat truncated ones). ``budget_seconds=None`` makes it the plain step-based one-cycle schedule.
    """

    warmup = 0.2
    start_factor = 1 / 25  # OneCycleLR's div_factor
    final_factor = 1e-4

    def __init__(
        self, optimizer: torch.optim.Optimizer, total_steps: int, budget_seconds: float | None
    ) -> None:
        self.optimizer = optimizer
        self.peaks = [float(group["lr"]) for group in optimizer.param_groups]
        self.total_steps = max(1, total_steps)
        self.budget: float | None = budget_seconds if budget_seconds is None else max(budget_seconds, 1e-9)
        self.started = time.monotonic()
        self.steps = 0
        self._apply(0.0)

    def progress(self) -> float:
        by_steps = self.steps / self.total_steps
        by_time = (time.monotonic() - self.started) / self.budget if self.budget is not None else 0.0
        return min(1.0, max(by_steps, by_time))

    def factor(self, progress: float) -> float:
        if progress < self.warmup:
            t = progress / self.warmup
            return self.start_factor + (1 - self.start_factor) * (1 - math.cos(math.pi * t)) / 2
        t = (progress - self.warmup) / (1 - self.warmup)
        return self.final_factor + (1 - self.final_factor) * (1 + math.cos(math.pi * t)) / 2

    def _apply(self, progress: float) -> None:
        factor = self.factor(progress)
        for group, peak in zip(self.optimizer.param_groups, self.peaks, strict=True):
            group["lr"] = peak * factor

    def step(self) -> None:
        self.steps += 1
        self._apply(self.progress())


def _prepare(
    images: torch.Tensor, spec: PreprocessSpec, channels_last: bool, device: torch.device
) -> torch.Tensor:
    """A loader's uint8 batch on ``device``, normalised (and channels-last when asked)."""
    images = spec.normalise_batch(images.to(device, non_blocking=True))
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


@dataclass
class _Evaluation:
    """One pass over a labelled loader: true and predicted classes, served embeddings, their input positions."""

    y_true: np.ndarray
    y_pred: np.ndarray
    embeddings: np.ndarray
    positions: np.ndarray
    loss: float

    @classmethod
    def empty(cls) -> _Evaluation:
        none = np.zeros(0, np.int64)
        return cls(none, none, np.zeros((0, 512), np.float32), none, float("nan"))


def _evaluate(
    net: ResNet,
    loader: Iterable[ImageBatch] | None,
    loss_fn: nn.Module,
    spec: PreprocessSpec,
    channels_last: bool,
    device: torch.device,
) -> _Evaluation:
    """Predictions, loss and served embeddings over a labelled loader (bad images are missing from ``positions``)."""
    if loader is None:
        return _Evaluation.empty()
    net.eval()
    trunk = embedding_trunk(net)
    trues, preds, embeddings, positions, total, count = [], [], [], [], 0.0, 0
    with torch.inference_mode():
        for batch in loader:
            if batch.labels is None:
                raise ModelError("evaluation needs a labelled loader")
            features = trunk(_prepare(batch.images, spec, channels_last, device))
            logits = net.fc(features).float()
            labels = batch.labels.to(device)
            total += float(loss_fn(logits, labels)) * len(batch)
            count += len(batch)
            trues.append(batch.labels.numpy())
            preds.append(logits.argmax(1).cpu().numpy())
            embeddings.append(embed_features(net.fc, features).float().cpu().numpy())
            positions.append(batch.indices.numpy())
    if not count:
        return _Evaluation.empty()
    return _Evaluation(
        np.concatenate(trues),
        np.concatenate(preds),
        np.concatenate(embeddings),
        np.concatenate(positions),
        total / count,
    )


def _scored(result: _Evaluation, classes: list[str]) -> ClassificationMetrics | None:
    """Classification metrics, with same-label retrieval within the split (None for an empty split)."""
    if not result.y_true.size:
        return None
    metrics = classification_metrics(result.y_true, result.y_pred, classes)
    if result.y_true.size >= 2:
        metrics.retrieval = retrieval_metrics(result.embeddings, result.y_true, k=RETRIEVAL_K)
    return metrics


def _catalogue_retrieval(query: _Evaluation, others: list[_Evaluation]) -> RetrievalMetrics | None:
    """``query``'s rows against the union of ``query`` and ``others`` (every labelled photo the run embedded)."""
    if query.y_true.size == 0:
        return None
    corpus = np.concatenate([query.embeddings, *(o.embeddings for o in others)])
    labels = np.concatenate([query.y_true, *(o.y_true for o in others)])
    if corpus.shape[0] < 2:
        return None
    return retrieval_metrics(
        query.embeddings,
        query.y_true,
        corpus,
        labels,
        query_positions=np.arange(query.y_true.size),
        k=RETRIEVAL_K,
    )


def _available_memory() -> int:
    """Bytes of physical memory available now (Linux / most Unixes); unbounded where the OS does not say."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 2**62


def _build_cache(
    frames: list[pd.DataFrame],
    spec: PreprocessSpec,
    config: ModelConfig,
    *,
    policy: ImagePolicy,
    num_workers: int,
) -> PixelCache | None:
    """The decoded photos of ``frames`` (in order) in memory, or None when they exceed ``config.pixel_cache_mb``."""
    paths = [path for frame in frames for path in frame[Columns.IMAGE_PATH].tolist()]
    need = PixelCache.estimate_bytes(len(paths), spec)
    cap = min(config.pixel_cache_mb * 2**20, _available_memory() // 2)
    if need > cap:
        log.info(
            "streaming photos from disk every epoch: caching %d photos at %d px needs %.0f MiB > %.0f MiB "
            "(pixel_cache_mb %d, at most half the available memory)",
            len(paths),
            spec.image_size,
            need / 2**20,
            cap / 2**20,
            config.pixel_cache_mb,
        )
        return None
    started = time.monotonic()
    cache = PixelCache.build(paths, spec, policy=policy, num_workers=num_workers)
    log.info(
        "decoded %d photos into a %.0f MiB pixel cache in %.1f s (%d unusable)",
        len(paths),
        cache.nbytes / 2**20,
        time.monotonic() - started,
        len(cache.failures),
    )
    return cache


# -- the trainer ------------------------------------------------------------------------------------------------------


def train_classifier(
    catalogue: Any,
    config: ModelConfig | None = None,
    *,
    data_config: DataConfig | None = None,
    policy: ImagePolicy | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune ResNet18 on ``catalogue`` (a :class:`~fashion_reco.data.catalogue.Catalogue`) per ``config``.

    ``data_config`` supplies the image policy and ``num_workers`` unless given explicitly. Bad images are skipped and
    listed in :attr:`TrainResult.failed_images` (or raise with ``policy.on_bad == "raise"``).
    """
    config = config or ModelConfig()
    data_config = data_config or DataConfig()
    policy = policy or ImagePolicy.from_data_config(data_config)
    workers = data_config.num_workers if num_workers is None else num_workers
    items = catalogue if isinstance(catalogue, pd.DataFrame) else catalogue.items
    if Columns.IMAGE_PATH not in items.columns:
        raise ModelError(
            "training needs local photos: the catalogue has no image_path column (fetch it first)"
        )
    train_df, val_df, test_df = split_for_training(items, config)
    if train_df.empty:
        raise ModelError(
            "no labelled training rows in the catalogue (need a label, and split 'train' or none)"
        )
    classes = sorted({str(v) for v in items[Columns.LABEL].dropna()})
    if len(classes) < 2:
        raise ModelError(f"need at least 2 classes to train a classifier, found {classes}")
    index = {name: i for i, name in enumerate(classes)}

    def targets(frame: pd.DataFrame) -> np.ndarray:
        return frame[Columns.LABEL].astype(str).map(index).to_numpy(dtype=np.int64)

    y_train = targets(train_df)
    missing = [classes[i] for i in range(len(classes)) if not (y_train == i).any()]
    if missing:
        log.warning("classes without training images (never predicted well): %s", missing)

    start = time.monotonic()
    with torch_threads(config.num_threads):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        spec = PreprocessSpec.from_model_config(config)
        device = default_device()
        resolved = resolve_weights(config.weights)
        net = build_resnet18(
            len(classes),
            weights=resolved,
            head=config.head,
            scale=config.cosine_scale,
            margin=config.angular_margin,
        ).to(device)
        head_epochs = config.head_epochs
        if resolved.kind == "none" and head_epochs:
            # A frozen *random* backbone gives the head nothing to learn from: phase 1 would only burn budget.
            log.info("no pretrained weights: skipping the %d frozen-backbone head epochs", head_epochs)
            head_epochs = 0
        channels_last = config.channels_last
        if channels_last:
            net = net.to(memory_format=torch.channels_last)

        sampler = None
        loss_weights = None
        if config.class_balancing == "sampler":
            counts = np.bincount(y_train, minlength=len(classes))
            sample_weights = (1.0 / counts[y_train]).tolist()
            sampler = WeightedRandomSampler(
                sample_weights, len(y_train), replacement=True, generator=generator
            )
        elif config.class_balancing == "weighted_loss":
            loss_weights = _class_weights(y_train, len(classes))
        if loss_weights is not None:
            loss_weights = loss_weights.to(device)
        loss_fn = nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=config.label_smoothing)
        eval_loss = nn.CrossEntropyLoss(weight=loss_weights)
        trunk = embedding_trunk(net)

        batch_size = config.batch_size
        cache = _build_cache([train_df, val_df, test_df], spec, config, policy=policy, num_workers=workers)
        offsets = np.cumsum([0, len(train_df), len(val_df)])
        train_loader: ImageLoader | CachedBatches
        if cache is not None:
            train_loader = CachedBatches(
                cache,
                np.arange(len(train_df)),
                spec,
                labels=y_train,
                batch_size=batch_size,
                train=True,
                augment=config.augment,
                sampler=sampler,
                shuffle=sampler is None,
                generator=generator,
                drop_last=len(y_train) > batch_size,
            )
        else:
            train_loader = make_loader(
                train_df[Columns.IMAGE_PATH].tolist(),
                spec,
                labels=y_train.tolist(),
                train=config.augment,
                batch_size=batch_size,
                num_workers=workers,
                policy=policy,
                sampler=sampler,
                shuffle=sampler is None,
                generator=generator,
                persistent_workers=True,
                drop_last=len(y_train) > batch_size,  # a batch of 1 breaks BatchNorm in training mode
            )

        def eval_loader(frame: pd.DataFrame, offset: int) -> ImageLoader | CachedBatches | None:
            if frame.empty:
                return None
            if cache is not None:
                return CachedBatches(
                    cache,
                    np.arange(offset, offset + len(frame)),
                    spec,
                    labels=targets(frame),
                    batch_size=batch_size,
                )
            return make_loader(
                frame[Columns.IMAGE_PATH].tolist(),
                spec,
                labels=targets(frame).tolist(),
                batch_size=batch_size,
                num_workers=workers,
                policy=policy,
            )

        val_loader = eval_loader(val_df, int(offsets[1]))
        steps = max(1, len(train_loader))
        history: list[dict[str, Any]] = []
        failed: dict[str, BadImage] = {}  # by file: the same photo fails in every epoch
        best: dict[str, Any] = {"f1": -math.inf, "state": None, "epoch": None, "metrics": None, "eval": None}
        stopped = "completed all epochs"
        epoch = 0
        # The budget covers the evaluation passes still to come after training stops (validation, test, and the
        # training photos for the test-vs-catalogue retrieval): forward-only, about a third of a training step per
        # photo, estimated from this run's own measured speed (so it adapts to a busy machine).
        to_evaluate = len(val_df) + (len(test_df) + len(train_df) if not test_df.empty else 0)
        clock = {"seconds": 0.0, "images": 0}

        def reserve() -> float:
            per_image = clock["seconds"] / clock["images"] if clock["images"] else 0.0
            return per_image / 3 * to_evaluate

        def spent() -> bool:
            return time.monotonic() - start + reserve() >= config.max_train_seconds

        phases: list[tuple[str, int]] = [("head", head_epochs), ("finetune", config.finetune_epochs)]
        for phase, n_epochs in phases:
            if n_epochs <= 0:
                continue
            if stopped.startswith("time budget"):
                break
            head_only = phase == "head"
            for p in backbone_parameters(net):
                p.requires_grad_(not head_only)
            if head_only:
                optimizer = torch.optim.AdamW(
                    net.fc.parameters(), lr=config.lr_head, weight_decay=config.weight_decay
                )
            else:
                optimizer = torch.optim.AdamW(
                    [
                        {"params": backbone_parameters(net), "lr": config.lr_backbone},
                        {"params": list(net.fc.parameters()), "lr": config.lr_head},
                    ],
                    weight_decay=config.weight_decay,
                )
            # the fine-tuning schedule anneals by the end of the wall-clock budget at the latest
            remaining = config.max_train_seconds - (time.monotonic() - start)
            scheduler = _BudgetedOneCycle(optimizer, n_epochs * steps, None if head_only else remaining)
            stale = 0
            for _ in range(n_epochs):
                epoch += 1
                epoch_start = time.monotonic()
                partial = False
                net.train()
                if head_only:
                    trunk.eval()  # frozen BatchNorm statistics
                total_loss, correct, seen = 0.0, 0, 0
                bar = tqdm(
                    train_loader,
                    total=steps,
                    desc=f"epoch {epoch} ({phase})",
                    leave=False,
                    disable=not progress,
                )
                batch_start = time.monotonic()
                warm = False  # an epoch's first batch waits for workers to start: not a measure of speed
                for batch in bar:
                    if batch.labels is None:
                        raise ModelError("training needs a labelled loader")
                    images = _prepare(batch.images, spec, channels_last, device)
                    labels = batch.labels.to(device, non_blocking=True)
                    if head_only:
                        with torch.no_grad():
                            features = trunk(images)
                    else:
                        features = trunk(images)
                    logits = logits_for_training(net, features, labels)
                    loss = loss_fn(logits, labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if not head_only and warm:
                        clock["seconds"] += time.monotonic() - batch_start
                        clock["images"] += len(batch)
                        scheduler.budget = max(1e-9, remaining - reserve())
                    warm = True
                    scheduler.step()
                    total_loss += float(loss.detach()) * len(batch)
                    correct += int((logits.argmax(1) == labels).sum())
                    seen += len(batch)
                    bar.set_postfix(loss=f"{total_loss / max(seen, 1):.3f}")
                    if spent():
                        partial = True  # the budget is a wall-clock promise: stop mid-epoch, then validate
                        break
                    batch_start = time.monotonic()
                bar.close()
                for bad in train_loader.failures:
                    failed.setdefault(bad.file, bad)
                val_eval = _evaluate(net, val_loader, eval_loss, spec, channels_last, device)
                val_metrics = _scored(val_eval, classes)
                val_retrieval = val_metrics.retrieval if val_metrics else None
                train_loss = total_loss / max(seen, 1)
                row = {
                    "epoch": epoch,
                    "phase": phase,
                    "train_loss": train_loss,
                    "train_accuracy": correct / max(seen, 1),
                    "val_loss": val_eval.loss,
                    "val_accuracy": val_metrics.accuracy if val_metrics else None,
                    "val_macro_f1": val_metrics.macro_f1 if val_metrics else None,
                    "val_precision_at_10": val_retrieval.precision_at_k if val_retrieval else None,
                    "lr": [group["lr"] for group in optimizer.param_groups],
                    "seconds": time.monotonic() - epoch_start,
                    "images": seen,
                }
                history.append(row)
                log.info("epoch %d (%s): %s", epoch, phase, row)
                score = val_metrics.macro_f1 if val_metrics else -float(train_loss)
                if score > best["f1"]:
                    best.update(
                        f1=score,
                        epoch=epoch,
                        metrics=val_metrics,
                        eval=val_eval,
                        state={k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()},
                    )
                    stale = 0
                else:
                    stale += 1
                if spent():
                    where = "during" if partial else "after"
                    stopped = f"time budget of {config.max_train_seconds:g} s reached {where} epoch {epoch}"
                    break
                if val_metrics is not None and stale >= config.patience:
                    stopped = (
                        f"early stopping in phase {phase}: no validation macro-F1 gain for {stale} epochs"
                    )
                    break
            if head_only:
                for p in backbone_parameters(net):
                    p.requires_grad_(True)

        for p in net.parameters():
            p.requires_grad_(True)
        if best["state"] is not None:
            net.load_state_dict(best["state"])
        net.eval()
        test_loader = eval_loader(test_df, int(offsets[2]))
        test_eval = _evaluate(net, test_loader, eval_loss, spec, channels_last, device)
        test_metrics = (
            classification_metrics(test_eval.y_true, test_eval.y_pred, classes)
            if test_eval.y_true.size
            else None
        )
        val_eval = best["eval"] if best["eval"] is not None else _Evaluation.empty()
        train_eval = _Evaluation.empty()
        if test_metrics is not None:
            # the test photos against every labelled photo of the run, as "more like this" serves them
            train_loader_eval = eval_loader(train_df, 0)
            train_eval = _evaluate(net, train_loader_eval, eval_loss, spec, channels_last, device)
            test_metrics.retrieval = _catalogue_retrieval(test_eval, [val_eval, train_eval])
        for loader in (val_loader, test_loader):
            for bad in loader.failures if loader is not None else []:
                failed.setdefault(bad.file, bad)
        probe = next(
            (e.embeddings for e in (val_eval, test_eval, train_eval) if e.embeddings.shape[0] >= 2), None
        )
        mean_cosine = mean_pairwise_cosine(probe[:2048]) if probe is not None else None
    threshold = config.effective_collapse_threshold
    collapsed = mean_cosine is not None and mean_cosine > threshold
    if collapsed:
        message = (
            f"embedding collapse: the trained model's embeddings are nearly identical (mean pairwise cosine "
            f"{mean_cosine:.3f} > collapse_threshold {threshold:g}); 'more like this' would return "
            "near-random neighbours. Train longer, on more photos, or from pretrained weights."
        )
        log.warning(message)
        warnings.warn(message, EmbeddingCollapseWarning, stacklevel=2)
    seconds = time.monotonic() - start
    if failed:
        log.warning(
            "%d unusable images were skipped, e.g. %s: %s",
            len(failed),
            next(iter(failed)),
            next(iter(failed.values())).reason,
        )
    log.info("training finished in %.1f s (%s); best epoch %s", seconds, stopped, best["epoch"])
    return TrainResult(
        net=net.cpu(),
        classes=classes,
        preprocess=spec,
        history=history,
        validation_metrics=best["metrics"],
        test_metrics=test_metrics,
        best_epoch=best["epoch"],
        stopped_reason=stopped,
        seconds=seconds,
        n_train=len(train_df),
        n_validation=len(val_df),
        n_test=len(test_df),
        failed_images=list(failed.values()),
        embedding_mean_cosine=mean_cosine,
        collapsed=collapsed,
    )


# -- cheap mode: a linear head on cached embeddings -------------------------------------------------------------------


@dataclass
class HeadResult:
    """A linear classifier over L2-normalised 512-d embeddings."""

    head: nn.Linear
    classes: list[str]
    history: list[dict[str, float]]
    validation_metrics: ClassificationMetrics | None

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.head(torch.as_tensor(np.asarray(embeddings, dtype=np.float32)))
            return torch.softmax(logits, dim=1).numpy()

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Predicted labels (strings)."""
        return np.asarray(self.classes, dtype=object)[self.predict_proba(embeddings).argmax(1)]


def train_head_on_embeddings(
    embeddings: np.ndarray,
    labels: Sequence[Any],
    *,
    classes: Sequence[str] | None = None,
    validation: tuple[np.ndarray, Sequence[Any]] | None = None,
    epochs: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    class_balancing: str = "weighted_loss",
    seed: int = 0,
) -> HeadResult:
    """Train only a linear head on cached embeddings (full-batch AdamW, cosine schedule): seconds, not minutes.

    ``labels`` are label strings (or indices into ``classes``); ``validation`` optionally scores the best epoch,
    evaluated every 10 steps, whose weights are kept.
    """
    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] != len(labels):
        raise ModelError(f"embeddings of shape {tuple(x.shape)} do not match {len(labels)} labels")
    label_array = np.asarray(labels)
    if classes is None:
        classes = sorted({str(v) for v in label_array}) if label_array.dtype.kind not in "iu" else None
        if classes is None:
            raise ModelError("pass classes= when labels are integer indices")
    classes = [str(c) for c in classes]
    lookup = {c: i for i, c in enumerate(classes)}

    def to_index(values: Any) -> np.ndarray:
        arr = np.asarray(values)
        return (
            arr.astype(np.int64)
            if arr.dtype.kind in "iu"
            else np.array([lookup[str(v)] for v in arr], np.int64)
        )

    y = torch.as_tensor(to_index(label_array))
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(x.shape[1], len(classes))
    with torch.no_grad():
        bound = 1 / math.sqrt(x.shape[1])
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.zero_()
    weight = _class_weights(y.numpy(), len(classes)) if class_balancing != "none" else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    prepared = None
    if validation is not None:
        prepared = (torch.as_tensor(np.asarray(validation[0], dtype=np.float32)), to_index(validation[1]))
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"f1": -math.inf, "state": None, "metrics": None}
    with single_threaded_torch():  # [n, 512] x [512, k]: too small for the thread pool to pay off
        _fit_head(head, x, y, loss_fn, optimizer, scheduler, epochs, prepared, history, best, classes)
    if best["state"] is not None:
        head.load_state_dict(best["state"])
    head.eval()
    return HeadResult(head=head, classes=classes, history=history, validation_metrics=best["metrics"])


def _fit_head(
    head: nn.Linear,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    epochs: int,
    validation: tuple[torch.Tensor, np.ndarray] | None,
    history: list[dict[str, float]],
    best: dict[str, Any],
    classes: list[str],
) -> None:
    for step in range(1, epochs + 1):
        logits = head(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if validation is not None and (step % 10 == 0 or step == epochs):
            x_val, y_val = validation
            with torch.inference_mode():
                pred = head(x_val).argmax(1).numpy()
            metrics = classification_metrics(y_val, pred, classes)
            history.append(
                {"epoch": step, "train_loss": float(loss.detach()), "val_macro_f1": metrics.macro_f1}
            )
            if metrics.macro_f1 > best["f1"]:
                best.update(
                    f1=metrics.macro_f1,
                    metrics=metrics,
                    state={k: v.clone() for k, v in head.state_dict().items()},
                )
        elif step % 10 == 0 or step == epochs:
            history.append({"epoch": step, "train_loss": float(loss.detach())})
