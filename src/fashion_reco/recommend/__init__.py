"""recommend layer: similar items, the personalised blend, baselines, tuning and offline evaluation.

Works on plain arrays (item ids, L2-normalised item embeddings, labels) and the data layer's interaction logs.
"""

from __future__ import annotations

from fashion_reco.recommend.base import FitContext, Recommender
from fashion_reco.recommend.baselines import (
    BehaviourOnlyRecommender,
    ImplicitALSRecommender,
    ImplicitBPRRecommender,
    ImplicitItemKNNRecommender,
    LastWeekPopularityRecommender,
    OwnHistoryPopularRecommender,
    PopularityRecommender,
    RecentPopularityRecommender,
    VisualOnlyRecommender,
    standard_baselines,
)
from fashion_reco.recommend.blend import SIGNALS, BlendRecommender
from fashion_reco.recommend.evaluation import (
    TimeSplitEvaluation,
    baseline_factories,
    evaluate_models,
    evaluate_recommenders,
    evaluate_time_split,
    time_split,
)
from fashion_reco.recommend.ranker import RankerRecommender
from fashion_reco.recommend.similarity import ExactIndex, FaissIndex, build_index, cosine_topk, l2_normalise
from fashion_reco.recommend.tuning import TuningResult, TuningSpace, tune_blend

__all__ = [
    "SIGNALS",
    "BehaviourOnlyRecommender",
    "BlendRecommender",
    "ExactIndex",
    "FaissIndex",
    "FitContext",
    "ImplicitALSRecommender",
    "ImplicitBPRRecommender",
    "ImplicitItemKNNRecommender",
    "LastWeekPopularityRecommender",
    "OwnHistoryPopularRecommender",
    "PopularityRecommender",
    "RankerRecommender",
    "RecentPopularityRecommender",
    "Recommender",
    "TimeSplitEvaluation",
    "TuningResult",
    "TuningSpace",
    "VisualOnlyRecommender",
    "baseline_factories",
    "build_index",
    "cosine_topk",
    "evaluate_models",
    "evaluate_recommenders",
    "evaluate_time_split",
    "l2_normalise",
    "standard_baselines",
    "time_split",
    "tune_blend",
]
