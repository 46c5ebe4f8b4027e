"""Reasons for the ranker's rows, phrased for people, from the per-feature contributions to each row's score.

Each feature belongs to an evidence group (:func:`fashion_reco.recommend.features.feature_group`); a row's reason is
the item-specific group with the largest positive contribution to its score, phrased with the facts behind it.
Contributions come from LightGBM's ``pred_contrib`` (exact TreeSHAP, Lundberg et al. 2020) or, for large batches,
from the split-path attribution of Saabas' *treeinterpreter* (each split's change of the node value credited to its
feature; like SHAP it sums to the score, and it costs one ``pred_leaf`` — about one ``predict`` — instead of
TreeSHAP's ~100×): :func:`path_tables` precomputes, per tree and leaf, the sum per group along the root→leaf path,
so explaining a row is a gather over its leaves. The phrases use: when the customer bought or viewed the item, which of their items it is bought
with or looks like (named by catalogue name or label), which bestseller list it tops. Texts are built for whole
blocks with array operations; no Python loop per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fashion_reco.recommend.candidates.base import CandidateSet
from fashion_reco.recommend.candidates.cooccurrence import CoOccurrenceSource
from fashion_reco.recommend.cooccurrence import strongest_links
from fashion_reco.recommend.features import FeatureBlock, feature_group
from fashion_reco.recommend.reasons import join_text

if TYPE_CHECKING:
    import lightgbm as lgb

    from fashion_reco.recommend.ranker import RankerRecommender, RankerState

__all__ = ["ago", "explain_pairs", "explanation_groups", "group_contributions", "path_tables", "period"]

#: groups whose evidence is about the item for this customer (customer-only features never name a reason)
_ITEM_GROUPS = (
    "history",
    "cooccurrence",
    "visual",
    "collaborative",
    "popular",
    "trending",
    "segment_popular",
    "profile",
)
_VERB = np.array(["viewed", "added to your cart", "bought"], dtype=object)


def explanation_groups(feature_names: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The item-specific evidence groups present and the ``(n_features, n_groups)`` membership matrix."""
    groups = [feature_group(n) for n in feature_names]
    present = tuple(g for g in _ITEM_GROUPS if g in groups)
    member = np.zeros((len(groups), len(present)), dtype=np.float64)
    for j, g in enumerate(groups):
        if g in present:
            member[j, present.index(g)] = 1.0
    return present, member


def path_tables(booster: lgb.Booster, member: np.ndarray) -> np.ndarray:
    """``(n_trees, max_leaves, n_groups)``: per leaf, Σ over the splits on its root path of (child − node value),
    credited to the split feature's group (Saabas attribution, summed per group). Built once per model."""
    trees = booster.dump_model()["tree_info"]
    n_groups = member.shape[1]
    max_leaves = max((t.get("num_leaves", 1) for t in trees), default=1)
    out = np.zeros((len(trees), max_leaves, n_groups), dtype=np.float64)
    for t, info in enumerate(trees):  # one walk per tree node at fit / load time, never per recommended row
        stack = [(info["tree_structure"], np.zeros(n_groups))]
        while stack:
            node, acc = stack.pop()
            if "leaf_index" in node:
                out[t, int(node["leaf_index"])] = acc
                continue
            if "split_feature" not in node:  # a single-leaf tree
                out[t, 0] = acc
                continue
            parent = float(node["internal_value"])
            credit = member[int(node["split_feature"])]
            for child in (node["left_child"], node["right_child"]):
                value = float(child["leaf_value"] if "leaf_index" in child else child["internal_value"])
                stack.append((child, acc + credit * (value - parent)))
    return out


def group_contributions(st: RankerState, X: np.ndarray, method: str, num_threads: int) -> np.ndarray:
    """Contribution of every evidence group to each row's score, ``(n_rows, n_groups)`` (``shap`` or ``path``)."""
    if X.shape[0] == 0 or not st.groups:
        return np.zeros((X.shape[0], len(st.groups)))
    if method == "shap":
        contrib = np.asarray(st.booster.predict(X, pred_contrib=True, num_threads=num_threads))[:, :-1]
        _, member = explanation_groups(st.feature_names)
        return contrib @ member
    leaves = np.asarray(st.booster.predict(X, pred_leaf=True, num_threads=num_threads), dtype=np.int64)
    leaves = leaves.reshape(X.shape[0], -1)
    out = np.zeros((X.shape[0], len(st.groups)))
    for t in range(leaves.shape[1]):  # one gather per tree over all rows
        out += st.leaf_groups[t, leaves[:, t]]
    return out


def ago(days: np.ndarray) -> np.ndarray:
    """Human time spans: "today", "yesterday", "3 days ago", "5 weeks ago", "4 months ago"."""
    d = np.asarray(days, dtype=np.float64)
    d = np.where(np.isfinite(d), d, 0.0)
    out = np.full(d.shape, "today", dtype=object)
    out[(d >= 1) & (d < 2)] = "yesterday"
    sel = (d >= 2) & (d < 14)
    out[sel] = np.char.mod("%d days ago", np.floor(d[sel]).astype(int)).astype(object)
    sel = (d >= 14) & (d < 60)
    out[sel] = np.char.mod("%d weeks ago", np.rint(d[sel] / 7).astype(int)).astype(object)
    sel = d >= 60
    out[sel] = np.char.mod("%d months ago", np.rint(d[sel] / 30.4).astype(int)).astype(object)
    return out


def period(window_days: float) -> str:
    """The bestseller window in words ("this week", "this month", "today", "in the last 10 days")."""
    if window_days <= 1:
        return "today"
    if window_days == 7:
        return "this week"
    if 28 <= window_days <= 31:
        return "this month"
    return f"in the last {window_days:g} days"


def _names(model: RankerRecommender, items: np.ndarray) -> np.ndarray:
    """Display names of item columns: catalogue name, else "the <label>", else "item <id>"."""
    data = model._require_fitted()
    ids = data.item_ids[items]
    out = np.char.add("item ", ids.astype(str)).astype(object)
    labels = model.context_.item_labels if model.context_ is not None else None
    if labels is not None:
        lab = labels[items]
        has = pd.notna(lab).astype(bool)
        out[has] = join_text("the ", lab[has])
    if model.item_names:
        named = pd.Series(model.item_names, dtype=object).reindex(ids.astype(str)).to_numpy(object)
        has = pd.notna(named).astype(bool)
        out[has] = join_text("the ", named[has])
    return out


def explain_pairs(
    model: RankerRecommender,
    st: RankerState,
    rows: np.ndarray,
    cand: CandidateSet,
    block: FeatureBlock,
    pair: np.ndarray,
    by_group: np.ndarray,
) -> np.ndarray:
    """Reason per candidate pair ``pair`` (indices into ``cand``) from its group contributions ``(len(pair), G)``."""
    names = list(st.feature_names)
    eligible = list(st.groups)
    m = pair.size
    out = np.full(m, model.default_reason, dtype=object)
    if m == 0 or not eligible:
        return out
    best = np.argmax(by_group, axis=1)
    has = by_group[np.arange(m), best] > 0
    dominant = np.where(has, np.array(eligible, dtype=object)[best], "")
    col = {n: i for i, n in enumerate(names)}
    X = block.X[pair]
    items = cand.item[pair]
    crow = rows[cand.row[pair]]
    cfg = model.ranker_config

    sel = dominant == "history"
    if sel.any():
        since = X[sel][
            :, [col["ci_days_since_purchase"], col["ci_days_since_cart"], col["ci_days_since_view"]]
        ]
        text = np.full(int(sel.sum()), model.default_reason, dtype=object)
        for j, verb in enumerate(("you bought this ", "you added this to your cart ", "you viewed this ")):
            earlier = np.isfinite(since[:, :j]).any(axis=1) if j else np.zeros(len(text), bool)
            pick = np.isfinite(since[:, j]) & ~earlier
            text[pick] = join_text(verb, ago(since[pick, j]))
        out[sel] = text

    sel = dominant == "cooccurrence"
    if sel.any():
        src = next((s for s in st.generator.sources if isinstance(s, CoOccurrenceSource)), None)
        text = np.full(int(sel.sum()), "often bought together with what you chose", dtype=object)
        if src is not None:
            from fashion_reco.recommend.base import take_rows

            hist = take_rows(src.recent, crow[sel])
            links, _ = strongest_links(hist, src.links, items[sel][:, None])
            link = links[:, 0]
            found = link >= 0
            if found.any():
                verb = _VERB[np.maximum(st.features.strongest_event(crow[sel][found], link[found]), 0)]
                text[found] = join_text("often bought with ", _names(model, link[found]), " you ", verb)
        out[sel] = text

    sel = dominant == "visual"
    if sel.any():
        close = block.closest_item[pair][sel]
        text = np.full(int(sel.sum()), "matches your style", dtype=object)
        found = close >= 0
        if found.any():
            verb = _VERB[np.maximum(st.features.strongest_event(crow[sel][found], close[found]), 0)]
            text[found] = join_text("looks like ", _names(model, close[found]), " you ", verb)
        out[sel] = text

    out[dominant == "collaborative"] = "customers with similar taste bought this"
    out[dominant == "popular"] = f"bestseller {period(cfg.popularity_window_days)}"
    out[dominant == "trending"] = "trending now"
    seg_word = "age group" if cfg.segment_column == "age_band" else cfg.segment_column.replace("_", " ")
    out[dominant == "segment_popular"] = f"bestseller in your {seg_word} {period(cfg.popularity_window_days)}"

    sel = dominant == "profile"
    if sel.any():
        labels = model.context_.item_labels if model.context_ is not None else None
        lab = labels[items[sel]] if labels is not None else np.full(int(sel.sum()), None, dtype=object)
        has_lab = np.array([v is not None for v in lab], dtype=bool)
        warm = crow[sel] >= 0
        text = np.full(int(sel.sum()), "suits your profile", dtype=object)
        text[has_lab & warm] = join_text("you often choose ", lab[has_lab & warm])
        text[has_lab & ~warm] = join_text("popular ", lab[has_lab & ~warm], " for customers like you")
        out[sel] = text
    return out
