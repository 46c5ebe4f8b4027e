"""The report shows "more like this" quality (same-label precision@10, Recall@1) and the collapse guard's warning."""

from __future__ import annotations

from pathlib import Path

from fashion_reco.model.metrics import ClassificationMetrics, RetrievalMetrics
from fashion_reco.report import sections
from fashion_reco.report.collect import ClassifierView, collapse_warning


def _stats(node) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        s.find_all("span", cls="stat-name")[0].text(): s.find_all("span", cls="stat-value")[0].text()
        for s in node.find_all("div", cls="stat")
    }


def test_report_shows_retrieval_figures_and_warns_on_collapse(reco, report_path: Path, parse_html) -> None:  # type: ignore[no-untyped-def]
    doc, errors = parse_html(report_path.read_text(encoding="utf-8"))
    assert errors == []
    metrics = reco.image_model.metrics["test"]
    assert metrics.retrieval is not None
    (classifier,) = doc.find_all("section", data_section="classifier")
    stats = _stats(classifier)
    assert stats["same-label precision@10"] == f"{metrics.retrieval.precision_at_k:.3f}"
    assert stats["Recall@1"] == f"{metrics.retrieval.recall_at_1:.3f}"
    # the fixture's model learns from 40 photos in one epoch: its embeddings are flagged as collapsed
    assert reco.image_model.collapsed
    for key in ("gallery", "classifier"):
        (node,) = doc.find_all("section", data_section=key)
        (warning,) = node.find_all("p", cls="note-warn")
        assert "nearly identical" in warning.text() and "mean pairwise cosine" in warning.text()


def test_no_warning_without_collapse_and_no_retrieval_stats_for_old_models(parse_html) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    healthy = SimpleNamespace(training={"collapsed": False, "embedding_mean_cosine": 0.05})
    assert collapse_warning(healthy) is None and collapse_warning(object()) is None
    old = ClassificationMetrics(
        accuracy=0.5, macro_f1=0.5, per_class={}, confusion=[[1, 1], [1, 1]], classes=["a", "b"], n=4
    )
    doc, errors = parse_html(str(sections.classifier_section(ClassifierView(old, "test"))))
    assert (
        errors == []
        and "same-label precision@10" not in _stats(doc)
        and not doc.find_all("p", cls="note-warn")
    )
    new = old.model_copy(
        update={
            "retrieval": RetrievalMetrics(
                k=10,
                precision_at_k=0.8123,
                recall_at_1=0.9,
                recall_at_k=1.0,
                chance_precision=0.14,
                mean_cosine=0.02,
                n_queries=4,
                n_corpus=40,
            )
        }
    )
    doc, _ = parse_html(str(sections.classifier_section(ClassifierView(new, "test"))))
    assert _stats(doc)["same-label precision@10"] == "0.812"
