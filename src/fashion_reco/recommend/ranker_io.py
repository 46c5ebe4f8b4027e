"""Saving and loading a fitted :class:`~fashion_reco.recommend.ranker.RankerRecommender` (no pickle).

Layout (through the library's one artefact writer, :mod:`fashion_reco.artefacts`: content-addressed payloads,
manifest written last)::

    ranker.json               manifest: format ``fashion-reco-ranker``, schema version, configs, fit summary, the
                              fitted state's structure (which arrays make up which frozen dataclass), feature names
    model-<sha12>.txt         the LightGBM model in LightGBM's own text format
    <field>-<sha12>.npy       every array of the fitted state (sources, features, training events)
    fallback-<sha12>/         the blend, when the ranker fell back to it

The fitted state is a tree of frozen dataclasses (:class:`~fashion_reco.recommend.ranker.RankerState`, its
candidate sources and :class:`~fashion_reco.recommend.features.FeatureState`); :func:`encode_state` walks their
fields generically — arrays and CSR matrices become payloads, scalars stay in the manifest — and
:func:`decode_state` rebuilds them, so a new source or feature needs no persistence code. Checksums are verified on
load; the feature names saved with the model must match the model's own, and scores after save → load are
identical (the served booster is always the one parsed from the saved text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fashion_reco.artefacts import ArtefactReader, ArtefactWriter
from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.errors import ArtefactError
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.history import TrainData

if TYPE_CHECKING:
    from fashion_reco.recommend.ranker import RankerRecommender

_Ranker = TypeVar("_Ranker", bound="RankerRecommender")

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SCHEMA_VERSION",
    "decode_state",
    "encode_state",
    "load_ranker",
    "save_ranker",
]

FORMAT = "fashion-reco-ranker"
SCHEMA_VERSION = 1
MANIFEST = "ranker.json"
WHAT = "saved ranker model"


def _registry() -> dict[str, type]:
    """Every frozen dataclass a fitted ranker state may contain, by name."""
    from fashion_reco.recommend import candidates as c
    from fashion_reco.recommend.features import FeatureState
    from fashion_reco.recommend.ranker import RankerState

    classes: list[type] = [
        RankerState,
        FeatureState,
        c.CandidateGenerator,
        c.OwnHistorySource,
        c.CoOccurrenceSource,
        c.VisualSource,
        c.CollaborativeSource,
        c.PopularSource,
        c.TrendingSource,
        c.SegmentPopularSource,
        c.ProfileSource,
    ]
    return {cls.__name__: cls for cls in classes}


def _str_array(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object array → (fixed-width unicode, None mask): saveable without pickle."""
    missing = np.array([v is None for v in values.ravel()], dtype=bool).reshape(values.shape)
    text = np.asarray([("" if v is None else str(v)) for v in values.ravel()], dtype=str).reshape(
        values.shape
    )
    return (text if text.size else np.zeros(values.shape, dtype="<U1")), missing


def encode_state(value: Any, key: str, add_array: Callable[[str, np.ndarray], object]) -> Any:
    """JSON description of ``value`` (frozen dataclasses, arrays, CSR, scalars, tuples, dicts); arrays via ``add_array``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {}
        for f in dataclasses.fields(value):
            if not f.compare:  # derived, rebuilt on load (e.g. the parsed booster)
                continue
            fields[f.name] = encode_state(getattr(value, f.name), f"{key}.{f.name}", add_array)
        return {"__dataclass__": type(value).__name__, "fields": fields}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            text, missing = _str_array(value)
            add_array(key, text)
            add_array(f"{key}.missing", missing)
            return {"__object_array__": key}
        add_array(key, value)
        return {"__array__": key}
    if sp.issparse(value):
        m = sp.csr_matrix(value)
        add_array(f"{key}.data", m.data)
        add_array(f"{key}.indices", m.indices.astype(np.int64))
        add_array(f"{key}.indptr", m.indptr.astype(np.int64))
        return {"__csr__": key, "shape": list(m.shape)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v, f"{key}.{i}", add_array) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, f"{key}.{i}", add_array) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode_state(v, f"{key}.{k}", add_array) for k, v in value.items()}}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ArtefactError(f"cannot save a {type(value).__name__} in a ranker state", key=key)


def decode_state(doc: Any, read_array: Callable[[str], np.ndarray]) -> Any:
    """Inverse of :func:`encode_state`."""
    if isinstance(doc, list):
        return [decode_state(v, read_array) for v in doc]
    if not isinstance(doc, dict):
        return doc
    if "__dataclass__" in doc:
        registry = _registry()
        name = doc["__dataclass__"]
        if name not in registry:
            raise ArtefactError(f"unknown state class {name!r}", key="state")
        cls = registry[name]
        values = {k: decode_state(v, read_array) for k, v in doc["fields"].items()}
        builder = getattr(cls, "with_booster", None)
        return builder(**values) if builder is not None else cls(**values)
    if "__array__" in doc:
        return read_array(doc["__array__"])
    if "__object_array__" in doc:
        key = doc["__object_array__"]
        text, missing = read_array(key).astype(object), read_array(f"{key}.missing")
        text[missing] = None
        return text
    if "__csr__" in doc:
        key = doc["__csr__"]
        return sp.csr_matrix(
            (read_array(f"{key}.data"), read_array(f"{key}.indices"), read_array(f"{key}.indptr")),
            shape=tuple(doc["shape"]),
        )
    if "__tuple__" in doc:
        return tuple(decode_state(v, read_array) for v in doc["__tuple__"])
    if "__dict__" in doc:
        return {k: decode_state(v, read_array) for k, v in doc["__dict__"].items()}
    raise ArtefactError("unreadable ranker state entry", key="state")


def save_ranker(model: RankerRecommender, directory: Path) -> Path:
    """Write ``model`` to ``directory`` (see the module docstring)."""
    data = cast(TrainData, model.data_)  # save() checks that the model is fitted
    writer = ArtefactWriter(directory, manifest=MANIFEST, format=FORMAT, version=SCHEMA_VERSION, what=WHAT)
    ctx: FitContext = model.context_ or FitContext()
    base_doc = {
        "item_ids": encode_state(data.item_ids, "item_ids", writer.add_array),
        "customer_ids": encode_state(data.customer_ids, "customer_ids", writer.add_array),
        "events": {
            k: encode_state(getattr(data, k), f"event_{k}", writer.add_array)
            for k in ("cust", "item", "event", "age_days")
        },
        "item_embeddings": encode_state(ctx.item_embeddings, "item_embeddings", writer.add_array),
        "item_labels": encode_state(ctx.item_labels, "item_labels", writer.add_array),
        "item_prices": encode_state(ctx.item_prices, "item_prices", writer.add_array),
    }
    state_doc = None
    feature_names: list[str] = []
    if model.state_ is not None:
        st = model.state_
        writer.add_text("model", st.model_text)
        state_doc = encode_state(dataclasses.replace(st, model_text=""), "state", writer.add_array)
        feature_names = list(st.feature_names)
    if model.fallback_ is not None:
        from fashion_reco.recommend.persistence import MANIFEST as BLEND_MANIFEST

        writer.add_component("fallback", model.fallback_.save, manifest=BLEND_MANIFEST)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "ranker_config": model.ranker_config.model_dump(mode="json"),
        "blend_config": model.config.model_dump(mode="json"),
        "item_names": model.item_names,
        "as_of": None if data.as_of is None else pd.Timestamp(data.as_of).isoformat(),
        "n_dropped_events": int(data.n_dropped),
        "fit_summary": model.fit_summary_,
        "feature_names": feature_names,
        "base": base_doc,
        "state": state_doc,
    }
    return writer.commit(meta)


def load_ranker(cls: type[_Ranker], directory: Path) -> _Ranker:
    """Rebuild a fitted ranker from ``directory``; any inconsistency is an :class:`ArtefactError` naming the file."""
    reader = ArtefactReader.open(
        directory, manifest=MANIFEST, format=FORMAT, version=SCHEMA_VERSION, what=WHAT
    )
    try:
        return _load(cls, reader)
    except ArtefactError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ArtefactError(
            f"inconsistent {WHAT}: {type(exc).__name__}: {exc}", file=reader.manifest_path
        ) from None


def _load(cls: type[_Ranker], reader: ArtefactReader) -> _Ranker:
    meta = reader.meta
    rd = reader.array
    base = meta["base"]
    item_ids = decode_state(base["item_ids"], rd)
    customer_ids = decode_state(base["customer_ids"], rd)
    ev = {k: decode_state(v, rd) for k, v in base["events"].items()}
    n_items, n_customers = len(item_ids), len(customer_ids)
    if len({len(v) for v in ev.values()}) != 1:
        raise ArtefactError("event arrays have different lengths", file=reader.file_of("event_cust"))
    if len(ev["cust"]) and (ev["cust"].min() < 0 or ev["cust"].max() >= n_customers):
        raise ArtefactError("events point outside the customer table", file=reader.file_of("event_cust"))
    if len(ev["item"]) and (ev["item"].min() < 0 or ev["item"].max() >= n_items):
        raise ArtefactError("events point outside the item table", file=reader.file_of("event_item"))
    as_of = None if meta.get("as_of") is None else pd.Timestamp(meta["as_of"])
    data = TrainData(
        item_ids=item_ids,
        customer_ids=customer_ids,
        cust=ev["cust"],
        item=ev["item"],
        event=ev["event"],
        age_days=ev["age_days"],
        as_of=as_of,
        n_dropped=int(meta.get("n_dropped_events", 0)),
        item_pos={v: i for i, v in enumerate(item_ids)},
        customer_pos={v: i for i, v in enumerate(customer_ids)},
    )
    model = cls(
        RankerConfig(**meta["ranker_config"]),
        blend=BlendConfig(**meta["blend_config"]),
        item_names=meta.get("item_names"),
    )
    model.context_ = FitContext(
        item_ids=item_ids,
        item_embeddings=decode_state(base["item_embeddings"], rd),
        item_labels=decode_state(base["item_labels"], rd),
        as_of=as_of,
        item_prices=decode_state(base.get("item_prices"), rd),
    )
    model._set_data(data, model.context_)
    model.fit_summary_ = meta.get("fit_summary") or {}
    if meta.get("state") is not None:
        text = reader.text("model")
        doc = meta["state"]
        doc["fields"]["model_text"] = text
        state = decode_state(doc, rd)
        names = list(state.booster.feature_name())
        if names != list(meta.get("feature_names", [])) or names != list(state.feature_names):
            raise ArtefactError(
                "feature names saved with the model do not match the LightGBM model's own",
                file=reader.file_of("model"),
                key="feature_names",
            )
        if state.generator.n_items != n_items:
            raise ArtefactError("ranker state does not match the item table", file=reader.manifest_path)
        model.state_ = state
    if reader.has("fallback"):
        from fashion_reco.recommend.blend import BlendRecommender

        model.fallback_ = BlendRecommender.load(reader.component("fallback"))
    if model.state_ is None and model.fallback_ is None:
        raise ArtefactError(
            "saved ranker holds neither a LightGBM model nor a fallback", file=reader.manifest_path
        )
    return model
