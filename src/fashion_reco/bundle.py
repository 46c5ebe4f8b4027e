"""A saved ``FashionRecommender`` as one artefact folder, written and read by :mod:`fashion_reco.artefacts`.

Layout::

    fashion_reco.json               manifest (format, library version, config, every part with its sha256) — last
    image_model-<sha12>/            ImageModel.save (a nested artefact, addressed by its metadata.json)
    recommender-<sha12>/            RankerRecommender.save (ranker.json) or BlendRecommender.save (without interactions)
    catalogue-<sha12>.parquet       the catalogue items
    embeddings-<sha12>.npy          item embeddings (float32, allow_pickle=False)
    interactions-<sha12>.parquet, customers-<sha12>.parquet (optional)

Every part — the two component folders included — is only reachable through ``fashion_reco.json``, whose atomic
replacement is the single commit: a save that fails or is killed at any moment leaves the previous bundle loading
exactly as before, and a folder holding anything but a bundle is refused rather than overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fashion_reco.artefacts import ArtefactReader, ArtefactWriter, verify_artefact
from fashion_reco.errors import ArtefactError, FashionRecoError, NotFittedError

__all__ = [
    "BUNDLE_FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "load_recommender",
    "save_recommender",
    "verify_bundle",
]

BUNDLE_FORMAT = "fashion-reco-bundle"
FORMAT_VERSION = 2
MANIFEST = "fashion_reco.json"
LEGACY_FORMATS = (
    "fashion-reco-bundle/1",
)  # saved before the shared artefact writer: refused on load, overwritable
WHAT = "saved recommender"


def save_recommender(directory: Path, reco: Any, *, library_version: str) -> Path:
    """Save a fitted ``FashionRecommender`` (image model, recommender, catalogue, embeddings, history) to ``directory``."""
    from fashion_reco.model.image_model import METADATA_FILE
    from fashion_reco.recommend.persistence import MANIFEST as BLEND_MANIFEST

    if reco.image_model is None or reco.catalogue is None or reco.item_embeddings is None:
        raise NotFittedError("nothing to save: call fit() first")
    writer = ArtefactWriter(
        directory,
        manifest=MANIFEST,
        format=BUNDLE_FORMAT,
        version=FORMAT_VERSION,
        what=WHAT,
        legacy_formats=LEGACY_FORMATS,
    )
    writer.add_component("image_model", reco.image_model.save, manifest=METADATA_FILE)
    if reco.recommender is not None:
        from fashion_reco.recommend.ranker import RankerRecommender
        from fashion_reco.recommend.ranker_io import MANIFEST as RANKER_MANIFEST

        inner = RANKER_MANIFEST if isinstance(reco.recommender, RankerRecommender) else BLEND_MANIFEST
        writer.add_component("recommender", reco.recommender.save, manifest=inner)
    writer.add_frame("catalogue", reco.catalogue.to_frame())
    writer.add_array("embeddings", reco.item_embeddings)
    if reco.interactions is not None:
        writer.add_frame("interactions", reco.interactions.frame)
    if reco.customers is not None:
        writer.add_frame("customers", reco.customers.frame)
    report = getattr(reco, "fit_report_", None)
    return writer.commit(
        {
            "library_version": library_version,
            "config": reco.config.to_toml_dict(),
            "fit_report": None if report is None else report.summary(),
        }
    )


def open_bundle(directory: Path) -> ArtefactReader:
    """Open and check the manifest of the bundle in ``directory``."""
    return ArtefactReader.open(
        directory,
        manifest=MANIFEST,
        format=BUNDLE_FORMAT,
        version=FORMAT_VERSION,
        what=WHAT,
        legacy_formats=LEGACY_FORMATS,
    )


def verify_bundle(directory: Path) -> dict[str, Any]:
    """Verify the checksum of every file in the bundle, components included; returns the manifest."""
    open_bundle(directory)
    return verify_artefact(directory, manifest=MANIFEST)


def load_recommender(directory: Path, cls: Any) -> Any:
    """Rebuild a ``FashionRecommender`` saved by :func:`save_recommender`, verifying every file."""
    reader = open_bundle(directory)
    try:
        return _load(reader, cls)
    except FashionRecoError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ArtefactError(
            f"inconsistent {WHAT}: {type(exc).__name__}: {exc}", file=reader.manifest_path
        ) from None


def _load(reader: ArtefactReader, cls: Any) -> Any:
    from fashion_reco.config import RecommenderConfig
    from fashion_reco.data.catalogue import Catalogue
    from fashion_reco.data.customers import Customers
    from fashion_reco.data.interactions import Interactions
    from fashion_reco.model.image_model import ImageModel
    from fashion_reco.recommend.blend import BlendRecommender

    config = reader.meta.get("config")
    try:
        settings = RecommenderConfig(**config) if isinstance(config, dict) else None
    except FashionRecoError as exc:
        raise ArtefactError(f"invalid config: {exc}", file=reader.manifest_path, key="config") from None
    except Exception as exc:  # pydantic ValidationError
        raise ArtefactError(f"invalid config: {exc}", file=reader.manifest_path, key="config") from None
    if settings is None:
        raise ArtefactError("manifest has no config table", file=reader.manifest_path, key="config")
    reco = cls(settings, image_model=ImageModel.load(reader.component("image_model")))

    def build(key: str, make: Any) -> Any:
        frame = reader.frame(key)
        try:
            return make(frame)
        except FashionRecoError as exc:
            raise ArtefactError(
                f"invalid {key} table: {exc.reason}", file=reader.file_of(key), key=key
            ) from None

    reco.catalogue = build("catalogue", Catalogue.from_frame)
    embeddings = reader.array("embeddings")
    if embeddings.ndim != 2 or embeddings.shape[0] != len(reco.catalogue) or embeddings.dtype.kind != "f":
        raise ArtefactError(
            f"embeddings {embeddings.dtype}{list(embeddings.shape)} do not fit the {len(reco.catalogue)} catalogue items",
            file=reader.file_of("embeddings"),
            key="embeddings",
        )
    reco.item_embeddings = embeddings
    if reader.has("interactions"):
        reco.interactions = build("interactions", Interactions.from_frame)
    if reader.has("customers"):
        reco.customers = build("customers", Customers.from_frame)
    if reader.has("recommender"):
        from fashion_reco.recommend.ranker import RankerRecommender
        from fashion_reco.recommend.ranker_io import MANIFEST as RANKER_MANIFEST

        ranker = reader.files["recommender"].get("manifest") == RANKER_MANIFEST
        reco.recommender = (RankerRecommender if ranker else BlendRecommender).load(
            reader.component("recommender")
        )
    reco.fit_report_ = _fit_report(reader.meta.get("fit_report"))
    return reco


def _fit_report(summary: Any) -> Any:
    """The stored fit summary back as a ``FitReport`` (None for bundles saved without one)."""
    from fashion_reco.fitting import FitReport

    if not isinstance(summary, dict):
        return None
    photos = summary.get("unusable_photos") or []
    return FitReport(
        unusable_photos=tuple(
            (str(p.get("item_id")), str(p.get("file")), str(p.get("reason")))
            for p in photos
            if isinstance(p, dict)
        ),
        dropped_items=tuple(str(i) for i in summary.get("dropped_items") or []),
        future_events=int(summary.get("future_events") or 0),
        now=None if summary.get("now") is None else str(summary.get("now")),
        unknown_item_events=int(summary.get("unknown_item_events") or 0),
    )
