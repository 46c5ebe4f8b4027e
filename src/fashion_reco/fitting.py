"""What ``FashionRecommender.fit`` does to its inputs before the models see them — one policy, one report.

* **Photos.** A photo that cannot be decoded is left out of training *and* of embedding by the same policy
  (``data.on_bad_image``): ``skip`` keeps the item recommendable without a visual signal (a zero embedding: it
  scores 0 in every image similarity), ``drop`` removes the item from the fitted catalogue, ``raise`` stops at the
  first one. Either way nothing fails minutes later: training and embedding agree.
* **Time.** Events dated after ``now`` (default: the wall clock) are left out with a warning that counts them; they
  would otherwise become the model's "now" and age every real event away.
* **Items.** Events on items the fitted catalogue does not hold (ids spelled differently, items without a photo,
  items dropped for a bad photo) cannot be recommended or described; they are left out with a warning that counts
  them and shows one, and a log that names none of the catalogue's items is refused with both spellings side by side.
* **Report.** :class:`FitReport` lists all of it; ``fit`` keeps it as ``fit_report_`` and ``save`` stores it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fashion_reco.checks import check_k, check_positive
from fashion_reco.columns import Columns
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.images import ImagePolicy
from fashion_reco.data.interactions import Interactions
from fashion_reco.errors import FashionRecoWarning, ImageError, InteractionsError, RecommendError

__all__ = [
    "CatalogueEmbedding",
    "FitReport",
    "check_embeddings",
    "check_k",
    "check_positive",
    "embed_catalogue",
    "exclude_future",
    "exclude_unknown_items",
    "training_failures",
]


@dataclass(frozen=True)
class CatalogueEmbedding:
    """A catalogue's embeddings under the bad-photo policy: one row per item of ``catalogue`` (after any drop)."""

    catalogue: Catalogue
    embeddings: np.ndarray
    unusable: tuple[tuple[str, str, str], ...] = ()  # (item_id, file, reason)
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class FitReport:
    """What ``fit`` left out or repaired, so nothing is silent: unusable photos, dropped items, future events."""

    unusable_photos: tuple[tuple[str, str, str], ...] = ()  # (item_id, file, reason), training and embedding
    dropped_items: tuple[str, ...] = ()
    future_events: int = 0
    now: str | None = None
    unknown_item_events: int = 0
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able summary (stored in the bundle manifest, printed by the CLI)."""
        return {
            "unusable_photos": [{"item_id": i, "file": f, "reason": r} for i, f, r in self.unusable_photos],
            "dropped_items": list(self.dropped_items),
            "future_events": self.future_events,
            "now": self.now,
            "unknown_item_events": self.unknown_item_events,
        }

    def __str__(self) -> str:
        parts = [f"{len(self.unusable_photos)} unusable photo(s)"]
        if self.dropped_items:
            parts.append(f"{len(self.dropped_items)} item(s) dropped")
        parts.append(f"{self.future_events} future event(s) left out")
        if self.unknown_item_events:
            parts.append(f"{self.unknown_item_events} event(s) on items not in the catalogue left out")
        return "fit: " + ", ".join(parts)


def embed_catalogue(
    model: Any,
    catalogue: Catalogue,
    *,
    policy: ImagePolicy,
    on_bad_image: Literal["skip", "drop", "raise"],
    batch_size: int,
    num_workers: int,
    progress: bool,
) -> CatalogueEmbedding:
    """Embed ``catalogue`` with ``model``; unusable photos are handled by ``on_bad_image`` (see the module docstring)."""
    if on_bad_image == "raise":
        arr = model.embed(
            catalogue, batch_size=batch_size, num_workers=num_workers, progress=progress, policy=policy
        )
        return CatalogueEmbedding(catalogue, np.asarray(arr, dtype=np.float32))
    result = model.embed(
        catalogue,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        policy=policy.model_copy(update={"on_bad": "skip"}),
        return_failed=True,
    )
    n = len(catalogue)
    if len(result.indices) == 0:
        first = result.failed[0] if result.failed else None
        raise ImageError(
            f"none of the {n} photos could be used (first: {first.reason if first else 'no photos'})",
            file=first.file if first else None,
        )
    ids = catalogue.item_ids
    unusable = tuple(
        (str(ids[b.index]), str(b.file), b.reason) for b in sorted(result.failed, key=lambda b: b.index)
    )
    if not unusable:
        return CatalogueEmbedding(catalogue, np.asarray(result.embeddings, dtype=np.float32))
    _warn_unusable(unusable, n, on_bad_image)
    if on_bad_image == "drop":
        kept = catalogue.subset(ids[result.indices])
        dropped = tuple(i for i, _, _ in unusable)
        return CatalogueEmbedding(kept, np.asarray(result.embeddings, dtype=np.float32), unusable, dropped)
    full = np.zeros((n, result.embeddings.shape[1]), dtype=np.float32)
    full[result.indices] = result.embeddings
    return CatalogueEmbedding(catalogue, full, unusable)


def _warn_unusable(unusable: tuple[tuple[str, str, str], ...], n: int, on_bad_image: str) -> None:
    item, file, reason = unusable[0]
    outcome = "dropped from the catalogue" if on_bad_image == "drop" else "kept without a visual signal"
    warnings.warn(
        f"{len(unusable)} of {n} photo(s) could not be used and their items were {outcome} "
        f"(first: item {item!r}, {file}: {reason}); see fit_report_",
        FashionRecoWarning,
        stacklevel=3,
    )


def training_failures(model: Any, catalogue: Catalogue) -> tuple[tuple[str, str, str], ...]:
    """The photos the image model's training left out, as (item_id, file, reason), matched to the catalogue."""
    failed = (getattr(model, "training", None) or {}).get("failed_images") or []
    if not failed:
        return ()
    by_file = dict(zip(catalogue.image_paths, catalogue.item_ids.tolist(), strict=True))
    return tuple((str(by_file.get(f["file"], "")), str(f["file"]), str(f["reason"])) for f in failed)


def exclude_future(interactions: Interactions | None, now: Any) -> tuple[Interactions | None, int, str]:
    """``interactions`` without events after ``now`` (warned and counted), the count, and ``now`` as ISO text."""
    stamp = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else _naive_utc(now)
    if interactions is None:
        return None, 0, stamp.isoformat()
    kept, count = interactions.exclude_future(stamp)
    return kept, count, stamp.isoformat()


def exclude_unknown_items(
    interactions: Interactions | None, item_ids: np.ndarray | None
) -> tuple[Interactions | None, int]:
    """``interactions`` without events on items outside ``item_ids`` (warned, counted); refuses a log with none."""
    if interactions is None or item_ids is None:
        return interactions, 0
    kept = interactions.check_known(item_ids, on_unknown="drop")
    count = len(interactions) - len(kept)
    if not count:
        return interactions, 0
    events = interactions.frame[Columns.ITEM_ID]
    unknown = pd.Index(events.unique()).difference(pd.Index(item_ids), sort=False)
    example, item = unknown[0], str(item_ids[0])
    if not len(kept):
        stems = {str(i).rsplit("/", 1)[-1] for i in item_ids[:1000]}
        hint = (
            "; a folder catalogue names items '<label>/<file stem>' — use those ids in the log, or give a CSV "
            "manifest with your own item_id column"
            if "/" in item and stems & set(unknown[:1000].astype(str))
            else ""
        )
        raise InteractionsError(
            f"none of the {len(events)} events names an item of the catalogue (the log says e.g. {example!r}, the "
            f"catalogue {item!r}){hint}",
            file=interactions.source,
            column=Columns.ITEM_ID,
        )
    where = f"{interactions.source}: " if interactions.source is not None else ""
    warnings.warn(
        f"{where}{count} of {len(events)} event(s) on {len(unknown)} item(s) not in the catalogue (e.g. {example!r}) "
        "were left out: they can be neither recommended nor described",
        FashionRecoWarning,
        stacklevel=2,
    )
    return kept, count


def _naive_utc(now: Any) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(now)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecommendError(f"now must be a date/time, got {now!r} ({exc})") from None
    if stamp is pd.NaT:
        raise RecommendError(f"now must be a date/time, got {now!r}")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def check_embeddings(embeddings: Any, catalogue: Catalogue) -> np.ndarray:
    """Caller-given embeddings: a finite 2-D float array with one row per catalogue item."""
    try:
        arr = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RecommendError(f"item_embeddings is not a numeric array: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] != len(catalogue) or arr.shape[1] == 0:
        raise RecommendError(
            f"item_embeddings must have shape ({len(catalogue)}, d) — one row per catalogue item — got {arr.shape}"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise RecommendError(
            f"item_embeddings has NaN or inf in {int(bad.sum())} row(s)",
            item_id=str(catalogue.item_ids[int(np.argmax(bad))]),
        )
    return arr
