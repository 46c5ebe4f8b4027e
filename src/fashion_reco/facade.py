"""``FashionRecommender``: the one class most users touch. It holds no logic of its own; it delegates to the layers.

data ──► model (train, embed) ──► recommend (similar items, two-stage ranker, evaluation) ──► snowflake, report
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from fashion_reco import bundle, fitting
from fashion_reco._version import __version__
from fashion_reco.config import RecommenderConfig
from fashion_reco.data.catalogue import Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.images import ImagePolicy
from fashion_reco.data.interactions import Interactions, TimestampLike
from fashion_reco.errors import NotFittedError
from fashion_reco.ids import Ids
from fashion_reco.model.image_model import ImageModel
from fashion_reco.recommend.base import FitContext
from fashion_reco.recommend.blend import BlendRecommender
from fashion_reco.recommend.evaluation import TimeSplitEvaluation, evaluate_recommenders, evaluate_time_split
from fashion_reco.recommend.ranker import RankerRecommender

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.snowflake.deploy import DeploymentReport

__all__ = ["FashionRecommender"]


class FashionRecommender:
    """Train on a retailer's photos, embed the catalogue, learn a personalised ranking, evaluate, deploy.

    Shaped after implicit's ``RecommenderBase``: ``fit`` / ``recommend`` / ``similar_items``.
    """

    def __init__(
        self, config: RecommenderConfig | None = None, *, image_model: ImageModel | None = None
    ) -> None:
        self.config = config or RecommenderConfig()
        self.image_model = image_model
        self.catalogue: Catalogue | None = None
        self.item_embeddings: np.ndarray | None = None
        self.interactions: Interactions | None = None
        self.customers: Customers | None = None
        self.recommender: RankerRecommender | BlendRecommender | None = None
        self.fit_report_: fitting.FitReport | None = None

    # -- configuration (RecTools style) ----------------------------------------------------------------------------
    def get_config(self) -> RecommenderConfig:
        """A copy of the configuration this recommender was built with (``from_config`` rebuilds an unfitted one)."""
        return self.config.model_copy(deep=True)

    @classmethod
    def from_config(cls, config: RecommenderConfig | Mapping[str, object]) -> FashionRecommender:
        """An unfitted recommender from a configuration (a :class:`RecommenderConfig` or its plain-JSON dict)."""
        if isinstance(config, RecommenderConfig):
            return cls(config.model_copy(deep=True))
        return cls(RecommenderConfig.from_dict(config))

    # -- model ----------------------------------------------------------------------------------------------------
    def train(self, catalogue: Catalogue, *, progress: bool = True) -> ImageModel:
        """Fine-tune ResNet18 on the catalogue's own classes (the ``split`` column, when present, is honoured)."""
        self.image_model = ImageModel.train(
            catalogue, self.config.model, data_config=self.config.data, progress=progress
        )
        return self.image_model

    def embed(self, catalogue: Catalogue, *, progress: bool = True) -> np.ndarray:
        """512-d L2-normalised embeddings of the catalogue's photos, in catalogue order."""
        return self._require_model().embed(
            catalogue,
            batch_size=self.config.data.batch_size,
            num_workers=self.config.data.num_workers,
            progress=progress,
            policy=ImagePolicy.from_data_config(self.config.data),
        )

    # -- recommender ----------------------------------------------------------------------------------------------
    def fit(
        self,
        catalogue: Catalogue,
        interactions: Interactions | None = None,
        customers: pd.DataFrame | Customers | None = None,
        *,
        item_embeddings: np.ndarray | None = None,
        progress: bool = True,
        now: TimestampLike | None = None,
    ) -> FashionRecommender:
        """Train the image model (unless one is given or loaded), embed the catalogue, fit the personalised ranker.

        The ranker (:class:`~fashion_reco.recommend.ranker.RankerRecommender`: candidate sources + LightGBM
        lambdarank) is the default; without interactions, or on a log too small to learn from, the linear blend is
        used (``recommender.fit_summary_`` says which and why).

        Pass ``item_embeddings`` (from :meth:`embed`, catalogue order) to skip re-embedding the photos. Unusable
        photos follow ``config.data.on_bad_image`` in training and embedding alike; events after ``now`` (default:
        the wall clock) are left out with a warning. Both are listed in :attr:`fit_report_`.
        """
        if self.image_model is None:
            self.train(catalogue, progress=progress)
        model = self._require_model()
        unusable = fitting.training_failures(model, catalogue)
        dropped: tuple[str, ...] = ()
        if item_embeddings is None:
            embedded = fitting.embed_catalogue(
                model,
                catalogue,
                policy=ImagePolicy.from_data_config(self.config.data),
                on_bad_image=self.config.data.on_bad_image,
                batch_size=self.config.data.batch_size,
                num_workers=self.config.data.num_workers,
                progress=progress,
            )
            catalogue, embeddings, dropped = embedded.catalogue, embedded.embeddings, embedded.dropped
            unusable = tuple({u[1]: u for u in (*unusable, *embedded.unusable)}.values())
        else:
            embeddings = fitting.check_embeddings(item_embeddings, catalogue)
        interactions, n_future, now_text = fitting.exclude_future(interactions, now)
        interactions, n_unknown = fitting.exclude_unknown_items(interactions, catalogue.item_ids)
        self.catalogue, self.item_embeddings, self.interactions = catalogue, embeddings, interactions
        self.customers = (
            customers
            if customers is None or isinstance(customers, Customers)
            else Customers.from_frame(customers)
        )
        self.recommender = (
            BlendRecommender(self.config.blend).fit(None, self._fit_context())
            if self.interactions is None
            else RankerRecommender(
                self.config.ranker, blend=self.config.blend, item_names=_item_names(catalogue)
            ).fit(self.interactions, self._fit_context())
        )
        self.fit_report_ = fitting.FitReport(unusable, dropped, n_future, now_text, n_unknown)
        return self

    def similar_items(self, item_ids: Ids, k: int = 10, filter_items: Ids | None = None) -> pd.DataFrame:
        """ "More like this": top-k by cosine similarity of image embeddings → ``item_id, similar_item_id, score, rank``."""
        return self._require_fitted().similar_items(item_ids, k=fitting.check_k(k), filter_items=filter_items)

    def recommend(
        self,
        customer_ids: Ids,
        k: int = 12,
        filter_already_purchased: bool | None = None,
        filter_items: Ids | None = None,
    ) -> pd.DataFrame:
        """Personalised top-k per customer (cold customers included) → ``customer_id, item_id, score, rank, reason``.

        ``filter_already_purchased``: ``None`` (default) keeps the model's own default — the ranker keeps
        repurchases (a learned feature), the blend removes them; ``True`` / ``False`` force it (business rules).
        """
        model = self._require_fitted()
        if filter_already_purchased is None:
            return model.recommend(customer_ids, k=fitting.check_k(k), filter_items=filter_items)
        return model.recommend(
            customer_ids,
            k=fitting.check_k(k),
            filter_already_purchased=filter_already_purchased,
            filter_items=filter_items,
        )

    def evaluate(
        self,
        test_interactions: Interactions,
        k: int | None = None,
        *,
        relevance: str = "any",
        segment: str = "warm",
    ) -> pd.DataFrame:
        """Offline metrics of the fitted blend and every baseline on a later time window → one row per model.

        ``k`` defaults to ``config.blend.k``; ``relevance`` / ``segment`` as in
        :func:`~fashion_reco.recommend.evaluation.evaluate_models`.
        """
        return evaluate_recommenders(
            self._require_fitted(),
            test_interactions,
            k=self.config.blend.k if k is None else fitting.check_k(k),
            relevance=relevance,
            segment=segment,
        )

    def evaluate_time_split(
        self,
        interactions: Interactions,
        test_days: float | None = None,
        k: int | None = None,
        *,
        relevance: str = "any",
        segment: str = "warm",
        folds: int = 1,
        filter_already_purchased: bool = False,
        now: TimestampLike | None = None,
    ) -> TimeSplitEvaluation:
        """Rolling-origin evaluation of ``interactions`` (:func:`~fashion_reco.recommend.evaluation.evaluate_time_split`):
        ``folds`` windows of ``test_days`` at the end, fresh models fitted before each with this recommender's
        catalogue, embeddings and customers (the fitted model is left as it is). Events after ``now`` (default: the
        wall clock) are left out with a warning, so they cannot move the split; so are events on items outside the
        catalogue, which no model can recommend."""
        context = self._fit_context()
        return evaluate_time_split(
            fitting.exclude_unknown_items(fitting.exclude_future(interactions, now)[0], context.item_ids)[0],
            None if test_days is None else fitting.check_positive(test_days, "test_days"),
            context,
            self.config.blend,
            None if k is None else fitting.check_k(k),
            folds=folds,
            ranker_config=self.config.ranker,
            relevance=relevance,
            segment=segment,
            filter_already_purchased=filter_already_purchased,
        )

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save everything needed to serve as one directory (no pickle; manifest written last)."""
        return bundle.save_recommender(Path(path), self, library_version=__version__)

    @classmethod
    def load(cls, path: str | Path) -> FashionRecommender:
        """Load a directory written by :meth:`save`, verifying every checksum."""
        return bundle.load_recommender(Path(path), cls)

    # -- deployment and reporting ---------------------------------------------------------------------------------
    def deploy(
        self,
        session: Session | None = None,
        *,
        work_dir: str | Path | None = None,
        target: Literal["tables", "registry"] = "tables",
    ) -> DeploymentReport:
        """Deploy model, UDF, tables and batch procedure into Snowflake (a Snowpark local testing session when none is
        given); ``target="registry"``: the image model to the Snowflake Model Registry instead."""
        from fashion_reco.snowflake.deploy import deploy_recommender

        return deploy_recommender(
            self, session=session, config=self.config.snowflake, work_dir=work_dir, target=target
        )

    def report(
        self, path: str | Path, *, evaluation: pd.DataFrame | TimeSplitEvaluation | None = None
    ) -> Path:
        """Write a self-contained HTML report (galleries, customer pages, evaluation — with the fold table and
        intervals of an :meth:`evaluate_time_split` result — and classifier quality)."""
        from fashion_reco.report.html import write_report

        return write_report(self, Path(path), evaluation=evaluation)

    # -- guards ---------------------------------------------------------------------------------------------------
    def _require_model(self) -> ImageModel:
        if self.image_model is None:
            raise NotFittedError("no image model: call train() or fit() first, or load() a saved recommender")
        return self.image_model

    def _fit_context(self) -> FitContext:
        if self.catalogue is None or self.item_embeddings is None:
            raise NotFittedError("no catalogue embeddings: call fit() first, or load() a saved recommender")
        return FitContext.from_catalogue(
            self.catalogue,
            self.item_embeddings,
            customers=None if self.customers is None else self.customers.frame,
        )

    def _require_fitted(self) -> RankerRecommender | BlendRecommender:
        if self.recommender is None:
            raise NotFittedError(
                "the recommender is not fitted: call fit() first, or load() a saved recommender"
            )
        return self.recommender


def _item_names(catalogue: Catalogue) -> dict[str, str] | None:
    """Display names per item id from a catalogue's ``name`` column, when it has one (used in reasons)."""
    items = catalogue.to_frame()
    if "name" not in items.columns:
        return None
    named = items[items["name"].notna()]
    return dict(zip(named["item_id"].astype(str), named["name"].astype(str), strict=True))
