"""The blend must beat every baseline on the test window of a real log and of the synthetic fashion clickstream.

(a) Online Retail (first 10k rows, 5 days of real purchases, no photos): the last day is the test window and the
    blend tunes on half-day windows before it (``validation_days`` < test window). Only behaviour, popularity and
    trend exist here, so visual-only has nothing to run on and is not a baseline for this log.
(b) Synthetic clickstream (``fashion_reco.data.synthetic``) over the real 3,781-item catalogue with label-clustered
    stand-in embeddings, last 7 of 60 days held out.

The blend is compared on NDCG@k and MAP@k with the same filters, the same customers and the same k.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from fashion_reco.config import BlendConfig
from fashion_reco.data.synthetic import generate_dataset
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.baselines import implicit_available, standard_baselines
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import evaluate_models, time_split
from fashion_reco.recommend.tuning import TuningSpace

from .conftest import standin_embeddings


def _assert_blend_wins(table: pd.DataFrame) -> None:
    blend = table.set_index("model").loc["blend"]
    others = table[table["model"] != "blend"].set_index("model")
    assert len(others) >= 5 if implicit_available() else len(others) >= 3
    for metric in ("ndcg", "map"):
        beaten = others[others[metric] >= blend[metric]]
        assert beaten.empty, f"blend {metric}={blend[metric]:.4f} not above:\n{table.round(4).to_string()}"


@pytest.fixture(scope="module")
def retail_table(retail_log) -> pd.DataFrame:
    train, test = time_split(retail_log, 1.0)
    config = BlendConfig(k=10, test_days=1.0, validation_days=0.5)
    models = [BlendRecommender(config), *standard_baselines(config, with_visual=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_models(models, train, test, None, k=10)


def test_blend_beats_baselines_on_online_retail(retail_table: pd.DataFrame) -> None:
    _assert_blend_wins(retail_table)
    assert set(retail_table["model"]) >= {"blend", "popularity", "recent_popularity", "behaviour_only"}


def test_blend_beats_baselines_on_online_retail_cold_customers(retail_log) -> None:
    train, test = time_split(retail_log, 1.0)
    config = BlendConfig(k=10, test_days=1.0, validation_days=0.5)
    models = [BlendRecommender(config), *standard_baselines(config, with_visual=False)[:2]]
    table = evaluate_models(models, train, test, None, k=10, segment="cold")
    assert table["n_customers"].iloc[0] > 30
    blend = table.set_index("model").loc["blend"]
    assert (table[table["model"] != "blend"]["ndcg"] <= blend["ndcg"]).all(), table.round(4).to_string()


@pytest.fixture(scope="module")
def synthetic_table(clothing_catalogue: pd.DataFrame) -> pd.DataFrame:
    labels = clothing_catalogue["label"].to_numpy()
    emb = standin_embeddings(labels, seed=0)
    customers, clicks = generate_dataset(clothing_catalogue, 1000, item_embeddings=emb, seed=11)
    train, test = time_split(clicks, 7)
    ctx = FitContext(
        item_ids=clothing_catalogue["item_id"].to_numpy(),
        item_embeddings=emb,
        item_labels=labels,
        customers=customers,
    )
    config = BlendConfig(k=12, test_days=7, validation_days=7)
    blend = BlendRecommender(config, tuning_space=TuningSpace(max_customers=400, n_folds=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_models([blend, *standard_baselines(config)], train, test, ctx, k=12)


def test_blend_beats_baselines_on_synthetic_clickstream(synthetic_table: pd.DataFrame) -> None:
    _assert_blend_wins(synthetic_table)
    assert "visual_only" in set(synthetic_table["model"])
    assert synthetic_table["n_customers"].iloc[0] > 300
    row = synthetic_table.set_index("model").loc["blend"]
    assert 0 < row["coverage"] <= 1 and row["novelty"] > 0 and 0 < row["diversity"] < 2
