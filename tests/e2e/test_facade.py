"""The facade's user workflows, on real photos: fit, more-like-this, personalised recommend, evaluate, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco import Columns, FashionRecommender
from fashion_reco.errors import ArtefactError, NotFittedError
from fashion_reco.recommend.ranker import RankerRecommender


def test_similar_items_returns_k_ranked_neighbours_per_query(fitted: dict) -> None:
    reco: FashionRecommender = fitted["reco"]
    queries = list(reco.catalogue.item_ids[:3])
    out = reco.similar_items(queries, k=5)
    assert list(out.columns)[:4] == [Columns.ITEM_ID, Columns.SIMILAR_ITEM_ID, Columns.SCORE, Columns.RANK]
    assert out.groupby(Columns.ITEM_ID).size().to_dict() == {q: 5 for q in queries}
    assert not (out[Columns.ITEM_ID] == out[Columns.SIMILAR_ITEM_ID]).any(), (
        "an item is not similar to itself"
    )
    for _, group in out.groupby(Columns.ITEM_ID):
        assert group[Columns.RANK].tolist() == [1, 2, 3, 4, 5]
        assert np.all(np.diff(group[Columns.SCORE].to_numpy()) <= 1e-7)
    # scores are the cosine similarities of the stored embeddings
    emb = reco.item_embeddings
    pos = {item: i for i, item in enumerate(reco.catalogue.item_ids)}
    row = out.iloc[0]
    expected = float(emb[pos[row[Columns.ITEM_ID]]] @ emb[pos[row[Columns.SIMILAR_ITEM_ID]]])
    assert row[Columns.SCORE] == pytest.approx(expected, abs=1e-5)


def test_similar_items_respects_filter(fitted: dict) -> None:
    reco: FashionRecommender = fitted["reco"]
    query = reco.catalogue.item_ids[0]
    first = reco.similar_items([query], k=3)
    banned = first[Columns.SIMILAR_ITEM_ID].tolist()
    again = reco.similar_items([query], k=3, filter_items=banned)
    assert not set(banned) & set(again[Columns.SIMILAR_ITEM_ID])


def test_recommend_gives_every_customer_k_rows_with_reasons(fitted: dict) -> None:
    reco: FashionRecommender = fitted["reco"]
    known = fitted["train"].frame[Columns.CUSTOMER_ID].drop_duplicates().head(5).tolist()
    cold = ["brand-new-customer"]
    out = reco.recommend(known + cold, k=12)
    assert list(out.columns) == [
        Columns.CUSTOMER_ID,
        Columns.ITEM_ID,
        Columns.SCORE,
        Columns.RANK,
        Columns.REASON,
    ]
    assert out.groupby(Columns.CUSTOMER_ID).size().to_dict() == {c: 12 for c in known + cold}
    assert out[Columns.REASON].str.len().gt(0).all()
    assert not out.duplicated([Columns.CUSTOMER_ID, Columns.ITEM_ID]).any()


def test_recommend_never_returns_already_purchased_items(fitted: dict) -> None:
    reco: FashionRecommender = fitted["reco"]
    frame = fitted["train"].frame
    buyers = (
        frame.loc[frame[Columns.EVENT_TYPE] == "purchase", Columns.CUSTOMER_ID].drop_duplicates().head(20)
    )
    out = reco.recommend(buyers.tolist(), k=12, filter_already_purchased=True)
    bought = frame.loc[frame[Columns.EVENT_TYPE] == "purchase", [Columns.CUSTOMER_ID, Columns.ITEM_ID]]
    leaked = out.merge(bought, on=[Columns.CUSTOMER_ID, Columns.ITEM_ID])
    assert leaked.empty
    # by default the ranker decides: repurchase is one of its features, not a filter
    kept = reco.recommend(buyers.tolist(), k=12).merge(bought, on=[Columns.CUSTOMER_ID, Columns.ITEM_ID])
    assert isinstance(reco.recommender, RankerRecommender) and len(kept) > 0


def test_the_ranker_is_the_default_and_is_evaluated_against_every_baseline(fitted: dict) -> None:
    """The facade fits the two-stage ranker and evaluates it beside the baselines (which one wins is measured
    on rolling folds with intervals in the evaluation tests, not on one small window here)."""
    reco: FashionRecommender = fitted["reco"]
    assert isinstance(reco.recommender, RankerRecommender)
    assert reco.recommender.fit_summary_["model"] in ("ranker", "blend")
    table = reco.evaluate(fitted["test"], k=12)
    assert table["model"].iloc[0] == "ranker"
    assert {"popularity", "recent_popularity", "visual_only", "behaviour_only"} <= set(table["model"])
    ranker = table.set_index("model").loc["ranker"]
    assert ranker["n_customers"] > 10 and ranker["hit_rate"] > 0, table.to_string()


def test_save_load_roundtrip_gives_identical_answers(fitted: dict, saved_bundle: Path) -> None:
    reco: FashionRecommender = fitted["reco"]
    loaded = FashionRecommender.load(saved_bundle)
    customers = fitted["test"].frame[Columns.CUSTOMER_ID].drop_duplicates().head(8).tolist()
    pd.testing.assert_frame_equal(reco.recommend(customers, k=6), loaded.recommend(customers, k=6))
    items = list(reco.catalogue.item_ids[:4])
    pd.testing.assert_frame_equal(reco.similar_items(items, k=4), loaded.similar_items(items, k=4))
    np.testing.assert_array_equal(reco.item_embeddings, loaded.item_embeddings)
    assert loaded.image_model.classes == reco.image_model.classes


def test_saved_bundle_contains_no_pickle(saved_bundle: Path) -> None:
    for path in saved_bundle.rglob("*"):
        if path.is_file():
            assert path.suffix not in (".pkl", ".pickle", ".pt", ".pth"), path
            if path.suffix == ".npy":
                np.load(path, allow_pickle=False)  # raises if any array needs pickle


def test_tampered_bundle_is_refused_naming_the_file(saved_bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved_bundle, copy)
    victim = next(copy.glob("embeddings-*.npy"))
    victim.write_bytes(victim.read_bytes()[:-16])
    with pytest.raises(ArtefactError) as info:
        FashionRecommender.load(copy)
    assert victim.name in str(info.value)


def test_methods_before_fit_raise_not_fitted() -> None:
    reco = FashionRecommender()
    with pytest.raises(NotFittedError):
        reco.recommend(["c1"])
    with pytest.raises(NotFittedError):
        reco.similar_items(["i1"])
