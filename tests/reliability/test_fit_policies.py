"""Skip, report, continue: unusable photos follow one policy in training and embedding, future events never become
the model's "now", and a prefix holding a key that can never be fetched still gives a catalogue."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_reco import FashionRecommender, RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.errors import FashionRecoWarning, ImageError, InteractionsError, RecommendError


@pytest.fixture(scope="module")
def broken_catalogue(tiny_catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """The tiny catalogue with two photos replaced: one truncated, one not an image at all."""
    folder = tmp_path_factory.mktemp("photos")
    items = tiny_catalogue.to_frame()
    paths = []
    for i, source in enumerate(items["image_path"]):
        target = folder / f"{i}.jpg"
        shutil.copyfile(source, target)
        paths.append(str(target))
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:200])
    Path(paths[4]).write_text("not a photo")
    items["image_path"] = paths
    return Catalogue.from_frame(items)


def _config(policy: str, train: bool = False) -> RecommenderConfig:
    model = {"image_size": 32, "head_epochs": 0, "finetune_epochs": 1, "batch_size": 16, "augment": False}
    return RecommenderConfig(
        data={"num_workers": 0, "batch_size": 16, "on_bad_image": policy},
        model=model if train else {"image_size": 32},
    )


@pytest.mark.parametrize("policy", ["skip", "drop"])
def test_unusable_photos_are_skipped_in_training_and_embedding(
    broken_catalogue: Catalogue, tiny_world: dict, tiny_model, policy: str
) -> None:
    # "skip" trains the image model too (training and embedding must agree); "drop" reuses an untrained one
    reco = FashionRecommender(
        _config(policy, train=True), image_model=None if policy == "skip" else tiny_model
    )
    with pytest.warns(FashionRecoWarning, match="2 of 30 photo"):
        reco.fit(broken_catalogue, tiny_world["clicks"], tiny_world["customers"], progress=False)
    report = reco.fit_report_
    assert report is not None
    bad_ids = set(broken_catalogue.item_ids[[1, 4]])
    assert {u[0] for u in report.unusable_photos} == bad_ids and len(report.unusable_photos) == 2
    if policy == "skip":
        assert len(reco.image_model.training["failed_images"]) == 2  # type: ignore[union-attr]
        assert len(reco.catalogue) == 30 and report.dropped_items == ()  # type: ignore[arg-type]
        rows = np.flatnonzero(np.isin(reco.catalogue.item_ids, list(bad_ids)))  # type: ignore[union-attr]
        assert np.all(reco.item_embeddings[rows] == 0)  # type: ignore[index]
        everything = reco.recommend(list(reco.customers.customer_ids), k=30, filter_already_purchased=False)  # type: ignore[union-attr]
        assert bad_ids <= set(everything["item_id"])  # still recommendable, without a visual signal
        # but never "more like this" of, or for, anything: a zero embedding has no neighbours
        with pytest.warns(FashionRecoWarning, match="2 item\\(s\\) have no usable photo"):
            similar = reco.similar_items(list(reco.catalogue.item_ids), k=29)  # type: ignore[union-attr]
        assert not bad_ids & set(similar["item_id"]) and not bad_ids & set(similar["similar_item_id"])
        assert similar.groupby("item_id").size().eq(27).all()  # 30 items, itself and the two blanks excluded
    else:
        assert len(reco.catalogue) == 28 and set(report.dropped_items) == bad_ids  # type: ignore[arg-type]
        assert not bad_ids & set(reco.catalogue.item_ids)  # type: ignore[union-attr]


def test_raise_policy_stops_at_the_first_unusable_photo(
    broken_catalogue: Catalogue, tiny_model, tiny_world: dict
) -> None:
    reco = FashionRecommender(_config("raise"), image_model=tiny_model)
    with pytest.raises(ImageError) as info:
        reco.fit(broken_catalogue, tiny_world["clicks"], progress=False)
    assert str(info.value.file).endswith(("1.jpg", "4.jpg"))


def test_the_fit_report_is_saved_with_the_bundle(
    broken_catalogue: Catalogue, tiny_model, tiny_world: dict, tmp_path: Path
) -> None:
    reco = FashionRecommender(_config("skip"), image_model=tiny_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FashionRecoWarning)
        reco.fit(broken_catalogue, tiny_world["clicks"], progress=False)
    loaded = FashionRecommender.load(reco.save(tmp_path / "b"))
    assert loaded.fit_report_ == reco.fit_report_ and len(loaded.fit_report_.unusable_photos) == 2  # type: ignore[union-attr]


def test_a_future_event_never_becomes_now(
    tiny_model, tiny_catalogue: Catalogue, tiny_world: dict, fit_tiny_fn
) -> None:
    fit_tiny = fit_tiny_fn
    clicks = tiny_world["clicks"]
    now = clicks.end + pd.Timedelta(hours=1)
    baseline = fit_tiny(tiny_model, tiny_catalogue, tiny_world, now=now)
    frame = clicks.frame
    future = frame.iloc[:3].assign(timestamp=pd.Timestamp("2200-01-01"))
    poisoned = type(clicks).from_frame(pd.concat([frame, future], ignore_index=True))
    with pytest.warns(FashionRecoWarning, match=r"3 of \d+ event\(s\) are dated after now"):
        reco = fit_tiny(tiny_model, tiny_catalogue, {**tiny_world, "clicks": poisoned}, now=now)
    assert reco.fit_report_.future_events == 3  # type: ignore[union-attr]
    assert reco.recommender.data_.as_of == baseline.recommender.data_.as_of == clicks.end  # type: ignore[union-attr]
    customers = list(baseline.customers.customer_ids[:5])  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(reco.recommend(customers, k=5), baseline.recommend(customers, k=5))


def test_now_defaults_to_the_wall_clock(
    tiny_model, tiny_catalogue: Catalogue, tiny_world: dict, fit_tiny_fn
) -> None:
    fit_tiny = fit_tiny_fn
    with warnings.catch_warnings():
        warnings.simplefilter("error", FashionRecoWarning)  # the 2024 log has nothing after the wall clock
        reco = fit_tiny(tiny_model, tiny_catalogue, tiny_world)
    assert reco.fit_report_.future_events == 0 and reco.fit_report_.now > "2025"  # type: ignore[union-attr]


def test_events_on_items_outside_the_catalogue_are_counted_and_left_out(
    tiny_model, tiny_catalogue: Catalogue, tiny_world: dict, fit_tiny_fn
) -> None:
    """An event naming an item the catalogue lacks can be neither recommended nor described: warned, counted, out."""
    clicks = tiny_world["clicks"]
    now = clicks.end + pd.Timedelta(hours=1)
    baseline = fit_tiny_fn(tiny_model, tiny_catalogue, tiny_world, now=now)
    stray = clicks.frame.iloc[:4].assign(item_id=["ghost-1", "ghost-2", "ghost-1", "ghost-3"])
    mixed = type(clicks).from_frame(pd.concat([clicks.frame, stray], ignore_index=True))
    with pytest.warns(FashionRecoWarning, match=r"4 of \d+ event\(s\) on 3 item\(s\) not in the catalogue"):
        reco = fit_tiny_fn(tiny_model, tiny_catalogue, {**tiny_world, "clicks": mixed}, now=now)
    assert reco.fit_report_.unknown_item_events == 4  # type: ignore[union-attr]
    assert "4 event(s) on items not in the catalogue left out" in str(reco.fit_report_)
    customers = list(baseline.customers.customer_ids[:5])  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(reco.recommend(customers, k=5), baseline.recommend(customers, k=5))


def test_a_log_naming_no_catalogue_item_is_refused_with_both_spellings(
    tiny_model, tiny_catalogue: Catalogue, tiny_world: dict, fit_tiny_fn
) -> None:
    """The classic mismatch — a folder catalogue's '<label>/<stem>' ids against bare stems in the log — is named."""
    clicks = tiny_world["clicks"]
    items = tiny_catalogue.to_frame().assign(item_id=lambda f: "dress/" + f["item_id"].astype(str))
    folder_style = Catalogue.from_frame(items)
    with pytest.raises(
        InteractionsError, match=r"none of the \d+ events names an item of the catalogue"
    ) as info:
        fit_tiny_fn(tiny_model, folder_style, tiny_world, now=clicks.end + pd.Timedelta(hours=1))
    assert "'<label>/<file stem>'" in str(info.value) and info.value.column == "item_id"


def test_a_missing_customer_id_in_a_request_is_a_clear_error(tiny_reco) -> None:
    with pytest.raises(RecommendError, match="customer id at position 1 is missing"):
        tiny_reco.recommend([tiny_reco.customers.customer_ids[0], "NaN"], k=3)
