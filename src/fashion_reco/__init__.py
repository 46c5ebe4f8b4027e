"""fashion-reco: personalised fashion recommendations from product photos, customer profiles and clickstream."""

from __future__ import annotations

from fashion_reco._version import __version__
from fashion_reco.columns import Columns, EventTypes
from fashion_reco.config import RecommenderConfig
from fashion_reco.errors import FashionRecoError

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
