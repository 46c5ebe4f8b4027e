"""The two-stage ranker at production-like scale: fit, and recommend for every customer vs LightGBM and implicit.

The seeded synthetic log of ``bench_recommend.py`` (default 50,000 customers, 20,000 items, 2,000,000 events over
60 days; behaviour only — no embeddings, no labels, no customer table), with the ranker's default configuration
(candidates: own history, co-occurrence, collaborative ALS, bestsellers and trending — about 100 per customer).
Measured in one run:

* **fit** — ``RankerRecommender().fit(log)``: candidate sources and features at every training cut, LightGBM with
  early stopping, the validation gate against the blend on the two latest windows, the refit, and the sources at
  the final cut (with the collaborative source's per-customer table) (target ≤ 3 minutes on two cores);
* **recommend, end to end** — ``recommend(all customers, k=12)``: candidates, features, LightGBM scoring, top-k,
  popularity padding and the pred_contrib reasons, as a DataFrame (also without reasons, ``explain=False``);
* **LightGBM predict** — ``booster.predict`` alone on exactly the feature matrices the recommend builds (block by
  block; building them is not timed): the floor the end-to-end time is compared with (target ≤ 3×);
* **implicit item-kNN recommend** — ``CosineRecommender(K=100).recommend`` for all customers (target ≤ 10×).

No dense customers × items matrix is built anywhere: candidates are per block of 2,048 customers and collaborative
scores per block of at most 2**23 floats.

    .venv/bin/python benchmarks/bench_ranker.py [--quick] [--customers N --items N --events N]
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import numpy as np

from fashion_reco.columns import Columns
from fashion_reco.config import BlendConfig, RankerConfig
from fashion_reco.recommend.history import TrainData
from fashion_reco.recommend.ranker import RankerRecommender

SECTION = "ranker"
K = 12


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench_recommend import implicit_matrix, synthetic_log
    from implicit.nearest_neighbours import CosineRecommender

    p = bl.parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="customers (default 50,000; quick 400)")
    p.add_argument("--items", type=int, default=None, help="items (default 20,000; quick 300)")
    p.add_argument("--events", type=int, default=None, help="events (default 2,000,000; quick 12,000)")
    args = p.parse_args(argv)
    if args.repeats is None and not args.quick:
        args.repeats = (
            1  # one round recommends for 50,000 customers with three methods: minutes on shared cores
        )
    args = bl.finish_args(args)
    n_customers = args.customers or (400 if args.quick else 50_000)
    n_items = args.items or (300 if args.quick else 20_000)
    n_events = args.events or (12_000 if args.quick else 2_000_000)
    m = bl.machine(torch_threads=False)
    load_before = os.getloadavg()

    bl.log(f"generating {n_events:,} events for {n_customers:,} customers over {n_items:,} items")
    frame = synthetic_log(n_customers, n_items, n_events)
    item_ids = np.unique(frame[Columns.ITEM_ID].to_numpy())
    config = RankerConfig(k=K)

    bl.log("fitting the ranker")
    t0, c0 = time.perf_counter(), time.process_time()
    model = RankerRecommender(config, blend=BlendConfig(tune=False)).fit(frame, item_ids=item_ids)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    data: TrainData = model._require_fitted()
    customers = data.customer_ids
    st = model.state_
    if st is None:
        raise SystemExit(f"the ranker fell back to the blend: {model.fit_summary_.get('fallback')}")

    bl.log("fitting implicit item-kNN")
    ui = implicit_matrix(data, BlendConfig())
    knn = CosineRecommender(K=100, num_threads=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        knn.fit(ui, show_progress=False)

    # LightGBM predict alone on the feature matrices recommend builds (blocks of the same size; building untimed)
    bl.log("timing LightGBM predict on the recommend feature matrices")
    predict_s, build_s, n_rows = 0.0, 0.0, 0
    step = model._recommend_rows()
    rows_all = data.customer_rows(customers)
    for start in range(0, rows_all.size, step):
        rows = rows_all[start : start + step]
        t = time.perf_counter()
        cand = st.generator.generate(rows)
        X = st.features.transform(rows, cand).X
        build_s += time.perf_counter() - t
        t = time.perf_counter()
        st.booster.predict(X, num_threads=config.num_threads)
        predict_s += time.perf_counter() - t
        n_rows += X.shape[0]

    out: dict[str, Any] = {}
    all_rows = np.arange(data.n_customers)

    def rec_ours() -> None:
        out["ours"] = model.recommend(customers, k=K)

    def rec_no_reasons() -> None:
        model.ranker_config = config.model_copy(update={"explain": False})
        try:
            out["plain"] = model.recommend(customers, k=K)
        finally:
            model.ranker_config = config

    def rec_knn() -> None:
        out["knn"] = knn.recommend(all_rows, ui, N=K, filter_already_liked_items=True)

    bl.log(f"recommending for all {data.n_customers:,} customers ({args.repeats} round(s))")
    rec = bl.interleaved(
        {"ours": rec_ours, "no_reasons": rec_no_reasons, "knn": rec_knn}, args.repeats, warmup=0
    )
    load_after = os.getloadavg()
    ours = out["ours"]
    per_customer = ours.groupby(Columns.CUSTOMER_ID).size()
    result = {
        "fit_s": fit_s,
        "fit_cpu": fit_cpu,
        "predict_s": predict_s,
        "build_s": build_s,
        "rows": n_rows,
        "rec": rec,
        "full_lists": float((per_customer == K).mean()),
        "n_customers": data.n_customers,
        "n_items": data.n_items,
        "n_events": data.n_events,
        "candidates_per_customer": n_rows / max(data.n_customers, 1),
        "features": len(st.feature_names),
        "best_iteration": st.best_iteration,
        "load": (load_before, load_after),
        "reasons": ours[Columns.REASON].value_counts().head(4).to_dict(),
        "summary": model.fit_summary_,
    }
    body = render(m, result, args)
    bl.write_section(args.docs, SECTION, body)
    print(body)
    return result


def render(m: dict[str, Any], r: dict[str, Any], args: Any) -> str:
    rec = r["rec"]
    ours, plain, knn = bl.median(rec["ours"]), bl.median(rec["no_reasons"]), bl.median(rec["knn"])
    pred = r["predict_s"]
    windows = r["summary"].get("train_windows", [])
    lines = [
        "## Two-stage ranker: fit, and recommend for every customer (`RankerRecommender`)",
        "",
        f"`nice -n 10 .venv/bin/python benchmarks/bench_ranker.py{' --quick' if args.quick else ''}` — the seeded "
        f"synthetic log of `bench_recommend.py`: {r['n_customers']:,} customers, {r['n_items']:,} items, "
        f"{r['n_events']:,} events; behaviour only (no embeddings, labels or customer table). Default "
        f"`RankerConfig`: {r['candidates_per_customer']:.0f} candidates per customer on average, "
        f"{r['features']} features, {len(windows)} training windows + 1 validation window, "
        f"{r['best_iteration']} boosting rounds after early stopping. k = {K}; "
        f"{len(rec['ours'])} round(s) of recommend (median).",
        "",
    ]
    headers = ["step", "seconds", "vs LightGBM predict", "vs implicit item-kNN recommend"]
    rows = [
        [
            "fit (sources + features at every cut, LightGBM, pooled validation gate, refit, final sources)",
            f"{r['fit_s']:.1f} wall, {r['fit_cpu']:.1f} CPU",
            "",
            "",
        ],
        [
            "recommend all customers, end to end, with reasons (split-path attribution above 5,000 rows)",
            f"{ours:.1f}",
            f"{ours / pred:.2f}×",
            f"{ours / knn:.2f}×",
        ],
        [
            "recommend all customers, end to end, `explain=False`",
            f"{plain:.1f}",
            f"{plain / pred:.2f}×",
            f"{plain / knn:.2f}×",
        ],
        [f"LightGBM `predict` alone on the same {r['rows']:,} feature rows", f"{pred:.1f}", "1.00×", ""],
        ["(building those candidates + features, untimed above)", f"{r['build_s']:.1f}", "", ""],
        ["implicit `CosineRecommender(K=100).recommend`, all customers", f"{knn:.1f}", "", "1.00×"],
    ]
    lines.append(bl.table(headers, rows))
    lines += [
        "",
        f"- Targets: recommend ≤ 3× LightGBM predict, ≤ 10× implicit item-kNN; fit ≤ 180 s (CPU seconds of the "
        "process, all threads, are given beside the wall time: on a loaded machine they are what the fit costs). "
        f"Every customer got "
        f"{K} rows: {100 * r['full_lists']:.1f} %.",
        f"- Load average (1 / 5 / 15 min) before: {', '.join(f'{x:.1f}' for x in r['load'][0])}; after: "
        f"{', '.join(f'{x:.1f}' for x in r['load'][1])} — the machine is shared by several sessions, so absolute "
        "times are pessimistic; the ratios were measured in the same run.",
        f"- Top reasons: {', '.join(f'{k!r} ({v:,})' for k, v in r['reasons'].items())}.",
        "",
        bl.machine_lines(m),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
