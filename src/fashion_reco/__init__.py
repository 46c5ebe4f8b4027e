"""fashion-reco: personalised fashion recommendations from product photos, customer profiles and clickstream."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import RecommenderConfig
from fashion_reco.errors import FashionRecoError

try:
    __version__ = version("fashion-reco")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "Columns",
    "EventTypes",
    "FashionRecoError",
    "FashionRecommender",
    "RecommenderConfig",
    "__version__",
]


def __getattr__(name: str) -> object:
    # The facade pulls in torch and Snowpark; import it lazily so `import fashion_reco` stays cheap.
    if name == "FashionRecommender":
        from fashion_reco.facade import FashionRecommender

        return FashionRecommender
    raise AttributeError(f"module 'fashion_reco' has no attribute {name!r}")
