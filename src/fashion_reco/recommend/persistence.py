"""Saving and loading a fitted :class:`~fashion_reco.recommend.blend.BlendRecommender` as a directory.

Layout::

    recommender.json            manifest — format, config, options, learned weights / half-lives, every payload
                                file with its shape, dtype and sha256; written last, atomically
    <name>-<sha12>.npy          arrays (np.save, allow_pickle=False): the indexed training events, item ids,
                                embeddings, labels, item–item similarity (CSR parts), profile tables

Written and read through the library's one artefact writer (:mod:`fashion_reco.artefacts`): payload names are
content-addressed, so saving over an existing model never overwrites a file the old manifest points at, and a
process killed at any moment leaves the previous model loadable. :func:`load_blend` verifies presence, checksum,
shape and dtype of every payload, checks that the arrays fit together, and raises
:class:`~fashion_reco.errors.ArtefactError` naming the file at fault for anything forged, swapped or undecodable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.artefacts import ArtefactReader, ArtefactWriter
from fashion_reco.config import BlendConfig
from fashion_reco.errors import ArtefactError
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.history import EVENT_CODES, TrainData
from fashion_reco.recommend.normalise import normalise_rows
from fashion_reco.recommend.profile import ProfileModel

if TYPE_CHECKING:
    from fashion_reco.recommend.blend import BlendRecommender

_Blend = TypeVar("_Blend", bound="BlendRecommender")

__all__ = ["FORMAT", "MANIFEST", "load_blend", "save_blend"]

FORMAT = "fashion-reco-blend"
FORMAT_VERSION = 2
MANIFEST = "recommender.json"
LEGACY_FORMATS = (
    "fashion-reco-blend/1",
)  # saved before the shared artefact writer: refused on load, overwritable
WHAT = "saved recommender model"


def _str_array(values: np.ndarray) -> np.ndarray:
    """Object arrays of str → fixed-width unicode (saveable without pickle)."""
    arr = np.asarray([("" if v is None else str(v)) for v in values], dtype=str)
    return arr if arr.size else np.zeros(0, dtype="<U1")


def save_blend(model: BlendRecommender, directory: Path) -> Path:
    """Write ``model`` to ``directory`` (see the module docstring)."""
    data = cast(TrainData, model.data_)  # save() checks that the model is fitted
    writer = ArtefactWriter(
        directory,
        manifest=MANIFEST,
        format=FORMAT,
        version=FORMAT_VERSION,
        what=WHAT,
        legacy_formats=LEGACY_FORMATS,
    )
    arrays: dict[str, np.ndarray] = {
        "item_ids": _str_array(data.item_ids),
        "customer_ids": _str_array(data.customer_ids),
        "event_customer": data.cust.astype(np.int64),
        "event_item": data.item.astype(np.int64),
        "event_type": data.event.astype(np.int8),
        "event_age_days": data.age_days.astype(np.float64),
        "similarity_data": model.similarity_.data.astype(np.float32),
        "similarity_indices": model.similarity_.indices.astype(np.int64),
        "similarity_indptr": model.similarity_.indptr.astype(np.int64),
    }
    if model.embeddings_ is not None:
        arrays["embeddings"] = model.embeddings_.astype(np.float32)
    labels = model.labels_
    if labels is not None:
        arrays["item_labels"] = _str_array(labels)
        arrays["item_label_missing"] = np.array([v is None for v in labels], dtype=bool)
    profile_meta = None
    prof: ProfileModel | None = model.profile_
    if prof is not None:
        arrays["profile_item_label"] = prof.item_label.astype(np.int64)
        arrays["profile_global"] = prof.global_dist.astype(np.float64)
        arrays["profile_customer_prior"] = np.asarray(prof.customer_prior, dtype=np.float64)
        arrays["profile_customer_preferred"] = np.asarray(prof.customer_preferred, dtype=bool)
        for attr, table in prof.attr_tables.items():
            arrays[f"profile_table__{attr}"] = table.astype(np.float64)
        profile_meta = {
            "classes": [str(c) for c in prof.classes],
            "strength": prof.strength,
            "preferred_mix": prof.preferred_mix,
            "attr_values": {a: [str(v) for v in vals] for a, vals in prof.attr_values.items()},
        }
    for key, arr in arrays.items():
        writer.add_array(key, arr)
    tuning = model.tuning_.summary() if model.tuning_ is not None else None
    meta = {
        "config": model.config.model_dump(mode="json"),
        "options": model.options(),
        "signals": list(model.signals_),
        "weights": {k: float(v) for k, v in model.weights_.items()},
        "cold_weights": {k: float(v) for k, v in model.cold_weights_.items()},
        "half_life_days": float(model.half_life_days_),
        "trend_half_life_days": float(model.trend_half_life_days_),
        "as_of": None if data.as_of is None else pd.Timestamp(data.as_of).isoformat(),
        "n_dropped_events": int(data.n_dropped),
        "purchase_share": float(model._purchase_share),
        "profile": profile_meta,
        "tuning": tuning,
    }
    return writer.commit(meta)


def load_blend(cls: type[_Blend], directory: Path) -> _Blend:
    """Rebuild a fitted blend from ``directory`` (see the module docstring)."""
    reader = ArtefactReader.open(
        directory,
        manifest=MANIFEST,
        format=FORMAT,
        version=FORMAT_VERSION,
        what=WHAT,
        legacy_formats=LEGACY_FORMATS,
    )
    try:
        return _load(cls, reader)
    except ArtefactError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise ArtefactError(
            f"inconsistent {WHAT}: {type(exc).__name__}: {exc}", file=reader.manifest_path
        ) from None


def _load(cls: type[_Blend], reader: ArtefactReader) -> _Blend:
    manifest = reader.meta

    rd = reader.array

    def fail(message: str, key: str) -> ArtefactError:
        return ArtefactError(message, file=reader.file_of(key), key=key)

    item_ids = rd("item_ids").astype(object)
    customer_ids = rd("customer_ids").astype(object)
    cust, item, event, age = rd("event_customer"), rd("event_item"), rd("event_type"), rd("event_age_days")
    n_items, n_customers = len(item_ids), len(customer_ids)
    if len({len(cust), len(item), len(event), len(age)}) != 1:
        raise fail("event arrays have different lengths", "event_customer")
    if len(cust) and (cust.max() >= n_customers or cust.min() < 0):
        raise fail("events point outside the customer table", "event_customer")
    if len(item) and (item.max() >= n_items or item.min() < 0):
        raise fail("events point outside the item table", "event_item")
    if len(event) and (event.min() < 0 or event.max() >= len(EVENT_CODES)):
        raise fail("unknown event type codes", "event_type")
    if not np.isfinite(age).all():
        raise fail("non-finite event ages", "event_age_days")
    as_of = None if manifest.get("as_of") is None else pd.Timestamp(manifest["as_of"])
    data = TrainData(
        item_ids=item_ids,
        customer_ids=customer_ids,
        cust=cust,
        item=item,
        event=event,
        age_days=age,
        as_of=as_of,
        n_dropped=int(manifest.get("n_dropped_events", 0)),
        item_pos={v: i for i, v in enumerate(item_ids)},
        customer_pos={v: i for i, v in enumerate(customer_ids)},
    )
    try:
        config = BlendConfig(**manifest["config"])
    except Exception as exc:  # pydantic ValidationError
        raise ArtefactError(
            f"invalid config in manifest: {exc}", file=reader.manifest_path, key="config"
        ) from None
    model = cls(config, **manifest.get("options", {}))
    emb = reader.optional_array("embeddings")
    if emb is not None and emb.shape[0] != n_items:
        raise fail("embeddings do not match the item ids", "embeddings")
    labels = None
    if reader.has("item_labels"):
        lab = rd("item_labels").astype(object)
        missing = rd("item_label_missing")
        if lab.shape[0] != n_items or missing.shape[0] != n_items:
            raise fail("labels do not match the item ids", "item_labels")
        labels = np.where(missing, np.array(None, dtype=object), lab).astype(object)
    try:
        sim = sp.csr_matrix(
            (rd("similarity_data"), rd("similarity_indices"), rd("similarity_indptr")),
            shape=(n_items, n_items),
        )
        sim.check_format(full_check=True)
    except ValueError as exc:
        raise fail(f"invalid item-item similarity: {exc}", "similarity_indices") from None
    model.context_ = FitContext(item_ids=item_ids, item_embeddings=emb, item_labels=labels, as_of=as_of)
    model._set_data(data, model.context_)
    model.signals_ = tuple(manifest.get("signals", ()))
    model.weights_ = {k: float(v) for k, v in manifest.get("weights", {}).items()}
    model.cold_weights_ = {k: float(v) for k, v in manifest.get("cold_weights", {}).items()}
    numbers = [*model.weights_.values(), *model.cold_weights_.values()]
    numbers += [float(manifest["half_life_days"]), float(manifest["trend_half_life_days"])]
    if not all(np.isfinite(numbers)):
        raise ArtefactError("non-finite learned weights or half-lives", file=reader.manifest_path)
    model.embeddings_ = emb
    model.labels_ = labels
    model.similarity_ = sim
    from fashion_reco.recommend.popularity import popularity_counts

    model.popularity_counts_ = popularity_counts(data)
    model._z_popularity = normalise_rows(np.log1p(model.popularity_counts_)[None, :], model.normalisation)
    model._purchase_share = float(manifest.get("purchase_share", 0.0))
    model.profile_ = None
    meta = manifest.get("profile")
    if meta is not None:
        classes = np.array(meta["classes"], dtype=object)
        prof = ProfileModel(
            classes=classes,
            item_label=rd("profile_item_label"),
            global_dist=rd("profile_global"),
            strength=float(meta["strength"]),
            preferred_mix=float(meta["preferred_mix"]),
        )
        for attr, values in meta.get("attr_values", {}).items():
            prof.attr_values[attr] = np.array(values, dtype=object)
            prof.attr_tables[attr] = rd(f"profile_table__{attr}")
        prof.customer_prior = rd("profile_customer_prior")
        prof.customer_preferred = rd("profile_customer_preferred")
        if prof.customer_prior.shape != (n_customers, len(classes)):
            raise fail("profile table does not match the customers", "profile_customer_prior")
        model.profile_ = prof
    model.tuning_ = None
    model.tuning_summary_ = manifest.get("tuning")
    model.set_decay(float(manifest["half_life_days"]), float(manifest["trend_half_life_days"]))
    model._derive_static()
    return model
