"""Quickstart: product photos → fit → "more like this" → recommendations for a known and a brand-new customer →
save → load.

    python examples/quickstart.py            # the real clothing photos under $FASHION_RECO_DATA (../shared/data)
                                             # when present, else the sample shipped inside the package
    python examples/quickstart.py --smoke    # the shipped sample, 64 px, one epoch, 60 customers: well under a minute

No clickstream comes with the photos, so a seeded synthetic one is generated over the same items
(``fashion_reco.data.synthetic``); a real log in the same schema (``Interactions.from_csv``) drops in unchanged.
Outputs go to ``--out`` (default ``out/quickstart``): ``similar.csv``, ``recommendations.csv`` and the saved
recommender in ``model/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashion_reco import Columns, EventTypes, FashionRecommender, RecommenderConfig
from fashion_reco.data import Catalogue, load_clothing, sample_catalogue
from fashion_reco.data.synthetic import generate_clickstream, generate_customers

COLD_CUSTOMER = "brand-new-customer"


def make_config(smoke: bool) -> RecommenderConfig:
    """A short CPU budget: ``smoke`` is one 64 px epoch on 60 photos; otherwise a few minutes at 96 px."""
    if smoke:
        return RecommenderConfig(
            data={"num_workers": 0},
            model={
                "image_size": 64,
                "head_epochs": 0,
                "finetune_epochs": 1,
                "max_train_images": 60,
                "augment": False,
                "batch_size": 32,
            },
        )
    return RecommenderConfig(
        model={"image_size": 96, "head_epochs": 1, "finetune_epochs": 3, "max_train_seconds": 240}
    )


def open_catalogue(config: RecommenderConfig, smoke: bool) -> Catalogue:
    """The real clothing photos when the shared data is there (and not ``smoke``), else the shipped sample."""
    if not smoke and (config.data.root / "clothing" / "labels.csv").is_file():
        return load_clothing(config.data.root)
    return sample_catalogue()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budget: shipped sample, 64 px, one epoch")
    parser.add_argument("--out", type=Path, default=Path("out/quickstart"), help="output folder")
    parser.add_argument("--customers", type=int, default=None, help="synthetic customers (default 60 / 400)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the quickstart; returns 0 when the reloaded recommender answers exactly like the fitted one."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = make_config(args.smoke)
    catalogue = open_catalogue(config, args.smoke)
    print(f"catalogue: {catalogue!r}")

    # 1. train the image model on the catalogue's own labels, and embed every photo (512-d, L2-normalised)
    reco = FashionRecommender(config)
    model = reco.train(catalogue, progress=not args.smoke)
    held_out = "test" if "test" in model.metrics else "validation"
    print(f"image model, {held_out} photos: {model.metrics[held_out].summary().splitlines()[0]}")
    embeddings = reco.embed(catalogue, progress=not args.smoke)

    # 2. customers and a clickstream (synthetic here); the last `test_days` are what happens "next"
    customers = generate_customers(catalogue, n=args.customers or (60 if args.smoke else 400), seed=7)
    clicks = generate_clickstream(catalogue, customers, item_embeddings=embeddings, seed=7)
    history, _future = clicks.split_by_time(config.blend.test_days)
    print(f"clickstream: {clicks!r}")

    # 3. fit the personalised blend (reusing the embeddings: no second pass over the photos)
    reco.fit(catalogue, history, customers, item_embeddings=embeddings, progress=False)

    # 4. "more like this" for one item
    query = str(catalogue.item_ids[0])
    similar = reco.similar_items([query], k=5)
    print(f"\nmore like this: {query}\n{similar.to_string(index=False)}")

    # 5. recommendations for a customer with history and for one never seen before (cold start)
    events = history.frame
    buyers = events.loc[events[Columns.EVENT_TYPE] == EventTypes.PURCHASE, Columns.CUSTOMER_ID]
    known = str(buyers.iloc[0] if len(buyers) else events[Columns.CUSTOMER_ID].iloc[0])
    recent = events[events[Columns.CUSTOMER_ID] == known].tail(3)
    print(
        f"\n{known}'s latest events:\n{recent[[Columns.ITEM_ID, Columns.EVENT_TYPE, Columns.TIMESTAMP]].to_string(index=False)}"
    )
    recs = reco.recommend([known, COLD_CUSTOMER], k=5)
    print(f"\nrecommendations:\n{recs.to_string(index=False)}")

    # 6. save everything needed to serve, load it back, and check it answers the same
    bundle = reco.save(args.out / "model")
    loaded = FashionRecommender.load(bundle)
    same = loaded.recommend([known, COLD_CUSTOMER], k=5).equals(recs) and loaded.similar_items(
        [query], k=5
    ).equals(similar)
    similar.to_csv(args.out / "similar.csv", index=False)
    recs.to_csv(args.out / "recommendations.csv", index=False)
    summary = {
        "query_item": query,
        "known_customer": known,
        "cold_customer": COLD_CUSTOMER,
        "reloaded_same": same,
    }
    (args.out / "quickstart.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nsaved to {bundle}; reloaded answers identical: {same}")
    print(f"tables written to {args.out}/similar.csv and {args.out}/recommendations.csv")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
