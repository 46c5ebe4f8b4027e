"""Configuration: one pydantic model tree, loadable from TOML, environment variables and keyword arguments.

Precedence, highest first: explicit keyword arguments, ``FASHION_RECO_<SECTION>__<KEY>`` environment variables, the
TOML file, defaults. ``FASHION_RECO_DATA`` is the data root (``data.root``), as in the rest of the tooling. Unknown keys
anywhere are an error that names the key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, as pydantic-settings uses it there
    import tomli as tomllib

from fashion_reco.columns import EventType
from fashion_reco.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "EMBEDDING_DIM",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BlendConfig",
    "DataConfig",
    "ModelConfig",
    "RankerConfig",
    "RecommenderConfig",
    "SnowflakeConfig",
    "config_error",
    "default_data_root",
]

DATA_ENV = "FASHION_RECO_DATA"
#: Per-channel normalisation of ImageNet-trained networks, used when neither the configuration nor the pretrained
#: weights' own transforms say otherwise (e.g. random initialisation).
IMAGENET_MEAN: Final[tuple[float, float, float]] = (0.485, 0.456, 0.406)
IMAGENET_STD: Final[tuple[float, float, float]] = (0.229, 0.224, 0.225)
#: Width of the image embedding: ResNet18's global-average-pooled features.
EMBEDDING_DIM: Final = 512
#: How much one event of each type counts in a customer's history unless configured otherwise.
DEFAULT_EVENT_WEIGHTS: Final[Mapping[EventType, float]] = MappingProxyType(
    {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
)


def default_data_root() -> Path:
    """The shared data folder: ``$FASHION_RECO_DATA`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get(DATA_ENV) or Path("..") / "shared" / "data")


_UnitFloat = Annotated[float, Field(ge=0, le=1)]
_PositiveUnitFloat = Annotated[float, Field(gt=0, le=1)]


class _Section(BaseModel):
    # every float of every section must be finite (nan/inf are refused naming the key), unknown keys are errors
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


class DataConfig(_Section):
    """Where data lives and how images are validated and batched."""

    root: Path = Field(
        default_factory=default_data_root,
        description="Data root holding `clothing/` (photos, labels.csv) and `online_retail/`; where `--catalogue "
        "auto` / `clothing` look. Point it (or `$FASHION_RECO_DATA`) at your copy when it lives elsewhere.",
    )
    min_image_side: int = Field(
        16,
        ge=1,
        description="Smallest accepted width and height in pixels; smaller photos are bad images (see "
        "`on_bad_image`). Raise it to keep icons and tracking pixels out of a scraped catalogue.",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Decompression-bomb limit on width × height (40 MP, far above a product photo); raise it only "
        "for trusted, very large studio shots.",
    )
    on_bad_image: Literal["skip", "drop", "raise"] = Field(
        "skip",
        description="A photo that cannot be decoded or fails the size checks, in training and embedding alike: "
        "leave it out and list it in the fit summary, keeping the item recommendable without a visual signal "
        "(`skip`); the same, but also drop the item from the fitted catalogue (`drop`); or stop with an "
        "`ImageError` naming the file (`raise`).",
    )
    batch_size: int = Field(
        64,
        ge=1,
        description="Photos per forward pass when embedding a catalogue (`embed`, `fit`); lower it to cap peak "
        "memory.",
    )
    num_workers: int = Field(
        2,
        ge=0,
        description="DataLoader worker processes decoding photos for training and embedding; 0 decodes in the "
        "calling process (slowest, easiest to debug). More than the spare cores only adds contention.",
    )
    event_type_mapping: dict[str, EventType] = Field(
        default_factory=dict,
        description="Maps a clickstream's own event names onto `view` / `add_to_cart` / `purchase` when the CLI "
        "reads a CSV (`fit --interactions`, `evaluate --events/--test`); unmapped names must already be one of "
        "the three.",
    )
    s3_max_concurrency: int = Field(
        8,
        ge=1,
        description="Objects downloaded at once by `fashion-reco fetch` and `--catalogue s3://...` (also the parts "
        "of one large object); lower it on a thin link or a rate-limited bucket.",
    )
    s3_retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        "standard",
        description="botocore retry mode of every S3 request (`adaptive` also rate-limits the client when the "
        "store throttles).",
    )
    s3_max_attempts: int = Field(
        5,
        ge=1,
        description="botocore attempts per S3 request; objects that still fail with a transient error get one "
        "more pass before they are reported as failed.",
    )


class ModelConfig(_Section):
    """Image model: architecture, weights, input size and the training budget.

    Defaults fit a few thousand photos on 2 CPU cores in under 15 minutes: 64 px input, a cosine (normalised-softmax)
    head with a 0.2 rad angular margin so the served embedding is the one the loss shaped, photos decoded once into
    memory, a frozen-backbone head phase when weights are
    pretrained, then fine-tuning on a one-cycle schedule that anneals by the 13.5-minute wall-clock budget (evaluation included).
    """

    architecture: Literal["resnet18"] = Field(
        "resnet18",
        description="The image network; ResNet18 only (recorded in the saved model and checked on load).",
    )
    weights: str | None = Field(
        None,
        description="Starting weights: a torchvision name ('DEFAULT', 'IMAGENET1K_V1'), a local state_dict file, "
        "or None for random initialisation (no download; pretrained weights train much better models).",
    )
    image_size: int = Field(
        64,
        ge=32,
        le=1024,
        description="Square crop fed to the network, in pixels; 64 buys a from-scratch CPU run many epochs inside "
        "the budget (cost grows with the square of the side), 224 is what pretrained weights were trained at.",
    )
    resize_size: int | None = Field(
        None,
        ge=32,
        description="Shorter side before the centre crop (at least `image_size`); unset: image_size × 8/7, "
        "torchvision's 256/224 ratio.",
    )
    mean: tuple[_UnitFloat, _UnitFloat, _UnitFloat] | None = Field(
        None,
        description="Per-channel normalisation mean; unset: the pretrained weights' own (from their torchvision "
        "transforms), else ImageNet's. Set it only for weights trained on other statistics.",
    )
    std: tuple[_PositiveUnitFloat, _PositiveUnitFloat, _PositiveUnitFloat] | None = Field(
        None,
        description="Per-channel normalisation standard deviation; unset like `mean` (set both or neither).",
    )
    embedding_dim: Literal[512] = Field(
        EMBEDDING_DIM,
        description="Size of the image embedding: ResNet18's pooled features (fixed; the warehouse tables "
        "declare VECTOR(FLOAT, 512)).",
    )
    head: Literal["cosine", "linear"] = Field(
        "cosine",
        description="Classification head: 'cosine' (normalised softmax on the L2-normalised, standardised "
        "embedding, so the served embedding is the one the loss shaped: better 'more like this') or 'linear' "
        "(plain softmax on the pooled features, format-1 models).",
    )
    cosine_scale: float = Field(
        16.0,
        gt=0,
        le=128,
        description="Inverse temperature of the cosine head's softmax (logits = scale × cosine); 16 suits 10-100 "
        "classes, larger for many classes.",
    )
    angular_margin: float = Field(
        0.2,
        ge=0,
        lt=1.5,
        description="Additive angular margin (radians, ArcFace) on the true class while training the cosine "
        "head; 0 = plain normalised softmax. 0.2 learned faster than 0 on the real photos in both seeds measured "
        "(docs/evaluation.md).",
    )
    label_smoothing: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Label smoothing of the training cross-entropy (regularises a from-scratch network on a few "
        "thousand photos).",
    )
    collapse_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Collapse guard: mean pairwise cosine of the served embeddings above which training warns "
        "that they are nearly identical (neighbours near random); unset: 0.5 for the cosine head (standardised "
        "embeddings), 0.95 for the linear head (all-positive ReLU features sit high even when healthy). "
        "Measurements behind the defaults: docs/evaluation.md.",
    )

    @property
    def effective_collapse_threshold(self) -> float:
        """``collapse_threshold``, or the head's default when unset."""
        if self.collapse_threshold is not None:
            return self.collapse_threshold
        return 0.5 if self.head == "cosine" else 0.95

    head_epochs: int = Field(
        2,
        ge=0,
        description="Epochs training only the new classification head on a frozen backbone; skipped when "
        "`weights` is unset (a frozen random backbone teaches the head nothing).",
    )
    finetune_epochs: int = Field(
        30,
        ge=0,
        description="Most epochs fine-tuning the whole network (early stopping and `max_train_seconds` may end "
        "it sooner); the main lever of accuracy against training time.",
    )
    patience: int = Field(
        5,
        ge=1,
        description="Early stopping: epochs in a row without a better validation macro-F1 before a phase ends "
        "(the best epoch's weights are kept).",
    )
    max_train_seconds: float = Field(
        810.0,
        gt=0,
        description="Wall-clock training budget in seconds, checked after every batch (then one validation pass, "
        "and the final test / catalogue embedding passes); the learning-rate schedule anneals by it. Raise it for "
        "large catalogues or fixed-epoch comparisons.",
    )
    batch_size: int = Field(
        64,
        ge=1,
        description="Photos per training (and validation) batch; lower it when memory is short.",
    )
    lr_head: float = Field(
        3e-3,
        gt=0,
        description="Peak AdamW learning rate of the classification head (one-cycle schedule, both phases).",
    )
    lr_backbone: float = Field(
        1e-3,
        gt=0,
        description="Peak AdamW learning rate of the backbone while fine-tuning (one-cycle schedule); lower it with "
        "pretrained weights to change their features less.",
    )
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay of every trained parameter.")
    class_balancing: Literal["weighted_loss", "sampler", "none"] = Field(
        "weighted_loss",
        description="Against class imbalance: inverse-frequency class weights in the loss, a sampler drawing "
        "classes evenly, or nothing (when the classes are balanced already).",
    )
    augment: bool = Field(
        True,
        description="Random resized crops, horizontal flips and colour jitter on training photos (fights "
        "overfitting; off only for quick smoke runs).",
    )
    max_train_images: int | None = Field(
        None,
        ge=1,
        description="Train on at most this many photos, a stratified subsample (unset: all); bounds training "
        "time on large catalogues.",
    )
    validation_fraction: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="Stratified share of the training photos held out for early stopping when the catalogue has "
        "no `validation` split (and at least 10 training photos).",
    )
    seed: int = Field(
        0,
        ge=0,
        description="Seeds torch, the validation split / subsample and the data loaders (same machine, threads "
        "and seed → same model).",
    )
    pixel_cache_mb: int = Field(
        512,
        ge=0,
        description="Memory cap (MiB) of the in-memory cache of decoded, pre-downscaled training / validation / "
        "test photos, so that training decodes each photo once instead of every epoch and augments in batches "
        "(28 KB per photo at 64 px, 349 KB at 224 px), and never more than half the memory available at the start; "
        "above it photos stream from disk every epoch; 0 = always stream.",
    )
    compile: bool = Field(
        False,
        description="torch.compile the embedding model (compiling costs time up front; pays off above a few "
        "thousand images).",
    )
    channels_last: bool = Field(
        True,
        description="Channels-last memory format for training and embedding (faster convolutions on most CPUs).",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads while training and embedding; unset: torch's default (one per "
        "core). Set it when sharing the machine.",
    )

    @property
    def effective_resize_size(self) -> int:
        """Shorter side before the centre crop (torchvision's 256/224 ratio unless set)."""
        return self.resize_size or round(self.image_size * 8 / 7)

    @model_validator(mode="after")
    def _check_resize(self) -> ModelConfig:
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                "set both mean and std, or neither (then the weights' own normalisation is used)"
            )
        if self.resize_size is not None and self.resize_size < self.image_size:
            raise ValueError(f"resize_size ({self.resize_size}) must be >= image_size ({self.image_size})")
        return self


class BlendConfig(_Section):
    """Personalised ranking: signal weights, event weights, recency half-lives and how they are tuned.

    The five weights are relative (only their ratios matter). With ``tune`` on they are starting points: tuning
    keeps them unless the validation window shows a significantly better choice.
    """

    visual_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the visual-taste signal (image similarity to what the customer interacted with).",
    )
    behaviour_weight: float = Field(
        1.0, ge=0, description='Weight of the item–item co-occurrence signal ("often bought with").'
    )
    popularity_weight: float = Field(
        0.2, ge=0, description="Weight of all-time popularity (distinct customers)."
    )
    trend_weight: float = Field(
        0.1, ge=0, description="Weight of recent popularity (trend, decayed with `trend_half_life_days`)."
    )
    profile_weight: float = Field(
        0.3,
        ge=0,
        description="Weight of the profile (label affinity from attributes, stated preferences and history); the "
        "main signal for customers without history.",
    )
    event_weights: dict[EventType, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {k: float(v) for k, v in DEFAULT_EVENT_WEIGHTS.items()},
        description="How much one event of each type counts in a customer's history (taste, co-occurrence, "
        "profile); not tuned.",
    )
    half_life_days: float = Field(
        14.0,
        gt=0,
        description="Recency decay of a customer's history in days (an event this old counts half); tuning also "
        "tries 1/10 and 1/2 of the training log's span.",
    )
    trend_half_life_days: float = Field(
        3.0,
        gt=0,
        description="Recency decay of item popularity for the trend signal, in days; tuning also tries 1/20 of "
        "the training log's span.",
    )
    tune: bool = Field(
        True,
        description="Learn weights and half-lives on a time-split validation window (when the log spans more than "
        "`validation_days`); off: use the values above as written (faster fits).",
    )
    tune_method: Literal["grid", "optuna"] = Field(
        "grid",
        description="Tuning search: every point of a weight simplex × half-life grid, or Optuna TPE (needs the "
        "`tune` extra).",
    )
    tune_trials: int = Field(
        40,
        ge=1,
        description='Trials of the Optuna search (`tune_method = "optuna"` only; the grid\'s size follows from '
        "the signals and half-life candidates).",
    )
    tune_metric: Literal["ndcg", "map", "recall", "precision", "hit_rate"] = Field(
        "ndcg", description="Metric (at `k`) maximised on the validation window."
    )
    validation_days: float = Field(
        7.0,
        gt=0,
        description="Days at the end of the training log held out to tune (up to two earlier windows of the same "
        "length are added while fewer than 200 customers are covered); match it to the shopping cycle.",
    )
    test_days: float = Field(
        7.0,
        gt=0,
        description="Days at the end of the log held out as the test window by a time-split evaluation "
        "(`fashion-reco evaluate --events`, `FashionRecommender.evaluate_time_split`, the demo).",
    )
    k: int = Field(
        12,
        ge=1,
        description="List length: cut-off of the tuning and evaluation metrics (`evaluate` defaults to it) and "
        "`Recommender.recommend`'s default; the CLI / facade `recommend` take their own `k`.",
    )
    exact_max_items: int = Field(
        200_000,
        ge=1,
        description="Catalogues up to this many items use exact cosine search; larger ones the ANN backend.",
    )
    ann_backend: Literal["faiss", "none"] = Field(
        "faiss",
        description="Approximate index used above `exact_max_items`: faiss HNSW when installed, else exact "
        "(`none`: always exact).",
    )
    similarity_chunk_size: int = Field(
        2048,
        ge=1,
        description="Most query rows (items or customers) scored per block; bounds the memory of exact search and "
        "scoring.",
    )

    @model_validator(mode="after")
    def _some_signal_counts(self) -> BlendConfig:
        weights = (
            self.visual_weight,
            self.behaviour_weight,
            self.popularity_weight,
            self.trend_weight,
            self.profile_weight,
        )
        if not any(w > 0 for w in weights):
            raise ValueError(
                "at least one signal weight (visual, behaviour, popularity, trend, profile) must be > 0"
            )
        return self


#: candidates per source of the ranker's first stage (0 switches a source off)
DEFAULT_CANDIDATES: dict[str, int] = {
    "history": 30,
    "cooccurrence": 40,
    "visual": 20,
    "collaborative": 40,
    "popular": 24,
    "trending": 12,
    "segment_popular": 12,
    "profile": 12,
}


class RankerConfig(_Section):
    """Two-stage personalised ranking: candidate sources, training windows and the LightGBM lambdarank ranker.

    Defaults follow the published recipe of the H&M Personalized Fashion Recommendations winners (weekly windows,
    a few past weeks of training, ~100 candidates per customer) and LightGBM's own defaults; none is tuned to the
    synthetic data.
    """

    candidates: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_CANDIDATES),
        description="Candidates per customer from each source (history, cooccurrence, visual, collaborative, "
        "popular, trending, segment_popular, profile); 0 switches a source off. Visual needs embeddings, "
        "collaborative the `cf` extra (implicit), profile item labels.",
    )
    collaborative_algorithm: Literal["als", "bpr"] = Field(
        "als", description="implicit model behind the collaborative source."
    )
    history_half_life_days: float = Field(
        14.0,
        gt=0,
        description="Recency decay of a customer's history in the history / co-occurrence sources.",
    )
    cooccurrence_window_days: float = Field(
        90.0, gt=0, description="Only events this recent count when linking items bought or viewed together."
    )
    popularity_window_days: float = Field(
        7.0, gt=0, description='Window of the bestseller sources ("last week\'s bestsellers").'
    )
    segment_column: str = Field(
        "age_band",
        description="Categorical customer column for the per-segment bestsellers and the profile prior.",
    )
    feature_windows: tuple[float, ...] = Field(
        (7.0, 28.0, 90.0),
        description="Windows (days) of the count features (customer × item, item, customer).",
    )
    window_days: float = Field(
        7.0,
        gt=0,
        description="Length of each label window (what is bought in the window after a cut is the label); "
        "shrunk to span / (n_windows + 3) for logs too short to hold the windows plus history.",
    )
    n_windows: int = Field(
        3, ge=1, description="Past training windows, before the latest window used for early stopping."
    )
    label_event: Literal["view", "add_to_cart", "purchase"] = Field(
        "purchase", description="Event type that counts as relevant in a label window."
    )
    max_customers_per_window: int = Field(
        20_000, ge=1, description="Customers sampled per training window (those with a labelled event)."
    )
    min_train_customers: int = Field(
        50,
        ge=1,
        description="Fewer customers with a relevant item among their candidates (training windows together) "
        "than this and the ranker falls back to the blend, saying so in the fit summary.",
    )
    validate_against_blend: bool = Field(
        True,
        description="Before serving, compare the ranker (trained on the earlier windows) with the linear blend "
        "(fitted on the events before each cut) by MAP@k on the customers of the latest `validation_windows` "
        "windows, and fall back to the blend unless the ranker's pooled gain is positive; the fit summary "
        "records both, the gain's bootstrap interval and the decision. A guard for logs where the learned ranker "
        "does not generalise (measured: one Online Retail fold, a sparse simulator world).",
    )
    validation_windows: int = Field(
        2,
        ge=1,
        description="Latest windows pooled by the validation gate (at most `n_windows`): on each, a ranker trained "
        "on the windows before it and the blend fitted on the events before its cut are scored on the same "
        "customers; the ranker is served only when its MAP@k gain over the blend, pooled over those "
        "customer-windows, is positive (docs/ranking.md).",
    )
    k: int = Field(12, ge=1, description="Cut-off of the early-stopping metric MAP@k.")
    learning_rate: float = Field(0.05, gt=0, le=1, description="LightGBM learning rate.")
    num_leaves: int = Field(31, ge=2, description="LightGBM leaves per tree.")
    min_data_in_leaf: int = Field(20, ge=1, description="LightGBM minimum rows per leaf.")
    feature_fraction: float = Field(0.8, gt=0, le=1, description="LightGBM feature subsampling per tree.")
    lambda_l2: float = Field(1.0, ge=0, description="LightGBM L2 regularisation.")
    max_rounds: int = Field(
        500, ge=1, description="Most boosting rounds (early stopping usually ends sooner)."
    )
    early_stopping_rounds: int = Field(
        40,
        ge=1,
        description="Stop when MAP@k on the validation window has not improved for this many rounds.",
    )
    tune: bool = Field(
        False, description="Optuna search over the LightGBM parameters above (needs the `tune` extra)."
    )
    tune_trials: int = Field(20, ge=1, description="Optuna trials when `tune` is on.")
    explain: bool = Field(
        True, description="Phrase each row's reason from the feature contributions to its score."
    )
    explain_method: Literal["auto", "shap", "path"] = Field(
        "auto",
        description="Contributions behind the reasons: `shap` — LightGBM's pred_contrib (exact TreeSHAP, about "
        "100× the cost of predict per row); `path` — the split-path attribution (Saabas), as cheap as predict; "
        "`auto` — shap when a call explains at most `shap_max_rows` rows, else path.",
    )
    shap_max_rows: int = Field(5_000, ge=0, description="Largest call `auto` explains with exact TreeSHAP.")
    seed: int = Field(0, description="Seed of LightGBM, the customer sampling and the collaborative source.")
    num_threads: int = Field(
        1,
        ge=0,
        description="Threads for LightGBM and implicit (0: all cores). One by default: OpenMP busy-waits badly "
        "when the machine is shared (20× slower boosting measured under load); raise it on a dedicated machine.",
    )

    @field_validator("candidates")
    @classmethod
    def _known_sources(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_CANDIDATES))
        if unknown:
            raise ValueError(f"unknown candidate source {unknown[0]!r} (known: {sorted(DEFAULT_CANDIDATES)})")
        if any(v < 0 for v in value.values()):
            raise ValueError("candidate counts must be >= 0")
        return {**{k: 0 for k in DEFAULT_CANDIDATES}, **value}


class SnowflakeConfig(_Section):
    """Where to deploy: the embedded local testing session (default) or a real account.

    Unset connection fields fall back to the standard ``SNOWFLAKE_*`` environment variables, then to the
    ``connection_name`` entry of connections.toml.
    """

    mode: Literal["local", "account"] = Field(
        "local",
        description="`local`: Snowpark's local testing session in this process (nothing to set up); `account`: "
        "a real account.",
    )
    connection_name: str | None = Field(
        None,
        description="Entry of connections.toml (`$SNOWFLAKE_HOME` or `~/.snowflake`) to connect with "
        "(account mode); the fields below and `SNOWFLAKE_*` variables take precedence over its values.",
    )
    account: str | None = Field(
        None, description="Account identifier (`orgname-accountname`); else `SNOWFLAKE_ACCOUNT`."
    )
    user: str | None = Field(None, description="Login name; else `SNOWFLAKE_USER`.")
    password: SecretStr | None = Field(
        None,
        description="Password (kept secret, never logged); else `SNOWFLAKE_PASSWORD`. Prefer key-pair or SSO.",
    )
    authenticator: str | None = Field(
        None,
        description="Connector authenticator (`SNOWFLAKE_JWT`, `externalbrowser`, ...); else "
        "`SNOWFLAKE_AUTHENTICATOR`.",
    )
    role: str | None = Field(None, description="Role to deploy as; else `SNOWFLAKE_ROLE`.")
    warehouse: str | None = Field(
        None,
        description="Warehouse for the MERGEs, the UDF and the verification; else `SNOWFLAKE_WAREHOUSE`.",
    )
    database: str | None = Field(
        None, description="Database holding the stage, function and tables; else `SNOWFLAKE_DATABASE`."
    )
    schema_: str | None = Field(
        None,
        alias="schema",
        description="Schema holding the stage, function and tables; else `SNOWFLAKE_SCHEMA`.",
    )
    stage: str = Field(
        "FASHION_RECO_MODELS",
        description="Internal stage for the model files and the UDF's code (created when missing).",
    )
    table_prefix: str = Field(
        "FASHION_RECO_",
        description="Prefix of every table name (`<prefix>CATALOGUE`, `<prefix>RECOMMENDATIONS`, ...); change it "
        "to keep several deployments in one schema.",
    )
    udf_name: str = Field(
        "FASHION_RECO_EMBED_IMAGE",
        description="Name of the image-embedding UDF (`BINARY` → `VECTOR(FLOAT, 512)`).",
    )
    max_batch_size: int = Field(
        64,
        ge=1,
        description="Most rows per call of the vectorised UDF on an account (local testing calls it row by "
        "row); bounds the UDF's memory.",
    )
    udf_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What runs the image model inside the warehouse: `onnx` (the ONNX export with onnxruntime, "
        "numpy and Pillow; small, no torch) or `torch` (the PyTorch network; needs pytorch/torchvision from the "
        "channel and a Snowpark-optimised warehouse).",
    )
    runtime_version: str = Field(
        "3.11",
        pattern=r"^3\.\d{1,2}$",
        description="Python version of the UDF and stored procedure (`RUNTIME_VERSION`); must equal the Python "
        "you deploy from, because Snowpark ships the handlers pickled.",
    )
    packages: list[str] | None = Field(
        None,
        description="Package specs for the UDF (`numpy`, `pillow>=10`, `onnxruntime==1.17.1`); unset: the "
        "defaults for `udf_runtime` (fashion_reco.snowflake.packages.DEFAULT_PACKAGES), checked against "
        "INFORMATION_SCHEMA.PACKAGES before anything is created.",
    )
    procedure_packages: list[str] | None = Field(
        None,
        description="Package specs for the batch-recommendation stored procedure; unset: "
        "fashion_reco.snowflake.packages.PROCEDURE_PACKAGES.",
    )
    artifact_repository: str | None = Field(
        None,
        description="Snowflake artifact repository to resolve `packages` from (e.g. "
        "`snowflake.snowpark.pypi_shared_repository` for PyPI); unset: Snowflake's Anaconda channel. Packages "
        "from a repository are not checked against INFORMATION_SCHEMA.PACKAGES.",
    )
    check_packages: bool = Field(
        True,
        description="Check the requested packages against INFORMATION_SCHEMA.PACKAGES before creating anything "
        "(account mode, Anaconda channel only).",
    )
    photo_stage: str = Field(
        "FASHION_RECO_PHOTOS",
        description="Internal stage (with a directory table) holding the catalogue's photos, named by content "
        "hash; the UDF reads them from there.",
    )
    put_parallel: int = Field(
        8,
        ge=1,
        le=99,
        description="Threads per PUT when uploading photos and artefacts (Snowflake's PARALLEL).",
    )
    procedure_name: str = Field(
        "FASHION_RECO_BATCH_RECOMMEND",
        description="Stored procedure that computes RECOMMENDATIONS inside the warehouse.",
    )
    task_name: str = Field(
        "FASHION_RECO_NIGHTLY_RECOMMEND", description="Task that calls the procedure on `task_schedule`."
    )
    batch_lookback_days: float | None = Field(
        None,
        gt=0,
        description="Days of CLICKSTREAM before the scoring time (its latest TIMESTAMP) that the batch procedure "
        "reads; unset: all (what local `recommend` sees). Bounds the scan on long histories.",
    )
    task_schedule: str = Field(
        "USING CRON 0 3 * * * UTC",
        description="Task schedule (`USING CRON <expr> <tz>` or `<n> MINUTE`).",
    )

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, validate_assignment=True, allow_inf_nan=False
    )


class _EnvSource(EnvSettingsSource):
    """Environment source where ``FASHION_RECO_DATA`` (a path) sets ``data.root`` instead of the whole section."""

    def __call__(self) -> dict[str, Any]:
        raw = os.environ.get(DATA_ENV)
        if raw is not None and not raw.lstrip().startswith("{"):
            every = self.env_vars
            self.env_vars = {k: v for k, v in every.items() if k not in (DATA_ENV.lower(), DATA_ENV)}
            try:
                values = super().__call__()
            finally:
                self.env_vars = every
            values.setdefault("data", {})
            if isinstance(values["data"], dict):
                values["data"].setdefault("root", raw)
            return values
        return super().__call__()


class ConfigSections(TypedDict, total=False):
    """The sections of :class:`RecommenderConfig` as keyword arguments: a section model or a mapping of its keys."""

    data: DataConfig | Mapping[str, object] | None
    model: ModelConfig | Mapping[str, object] | None
    blend: BlendConfig | Mapping[str, object] | None
    snowflake: SnowflakeConfig | Mapping[str, object] | None


class RecommenderConfig(BaseSettings):
    """The whole configuration tree: ``data``, ``model``, ``blend``, ``ranker`` and ``snowflake`` sections."""

    model_config = SettingsConfigDict(
        env_prefix="FASHION_RECO_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        allow_inf_nan=False,
    )

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    blend: BlendConfig = Field(default_factory=BlendConfig)
    ranker: RankerConfig = Field(default_factory=RankerConfig)
    snowflake: SnowflakeConfig = Field(default_factory=SnowflakeConfig)

    def __init__(self, **sections: Unpack[ConfigSections]) -> None:
        """Sections given here (a section model or a mapping of its keys) override the environment and files."""
        values: dict[str, Any] = {k: v for k, v in sections.items() if v is not None}
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``FASHION_RECO_*`` variables, then the TOML file of :meth:`from_toml`."""
        if _ONLY_GIVEN.get():
            return (init_settings,)
        toml = _TOML_SOURCE.get()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, _EnvSource(settings_cls))
        return (*sources, toml) if toml is not None else sources

    @classmethod
    def from_toml(
        cls, path: str | os.PathLike[str], **overrides: Unpack[ConfigSections]
    ) -> RecommenderConfig:
        """Load a TOML file (sections ``[data]``, ``[model]``, ``[blend]``, ``[snowflake]``); environment variables
        and ``overrides`` (same shape as the constructor's keyword arguments) take precedence over it."""
        file = Path(path)
        if not file.is_file():
            reason = "config file is a folder" if file.is_dir() else "config file not found"
            raise ConfigError(reason, file=file)
        try:
            source = TomlConfigSettingsSource(cls, toml_file=file)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=file) from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file: {exc.strerror or exc}", file=file) from None
        token = _TOML_SOURCE.set(source)
        try:
            return cls(**overrides)
        except ConfigError as exc:
            if exc.context.get("key") is None or not _has_key(source.toml_data, str(exc.context["key"])):
                raise
            context = {k: v for k, v in exc.context.items() if k != "file"}
            raise ConfigError(exc.reason, file=file, **context) from None
        finally:
            _TOML_SOURCE.reset(token)

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> RecommenderConfig:
        """Exactly these values (e.g. :meth:`to_toml_dict` saved beside a model) over the defaults: no environment
        variables, no file. Errors are :class:`ConfigError` naming the key."""
        token = _ONLY_GIVEN.set(True)
        try:
            return cls(**dict(values))  # type: ignore[arg-type]  # checked by validation, errors name the key
        finally:
            _ONLY_GIVEN.reset(token)

    def to_toml_dict(self) -> dict[str, JsonValue]:
        """Plain-JSON view of the configuration without secrets (safe to log or save beside a model)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"snowflake": {"password"}})

    @field_validator("data", "model", "blend", "ranker", "snowflake", mode="before")
    @classmethod
    def _none_is_default(cls, value: object) -> object:
        return {} if value is None else value


# Set while from_dict builds a configuration from given values only (no environment, no file).
_ONLY_GIVEN: ContextVar[bool] = ContextVar("fashion_reco_only_given", default=False)
# The TOML source of the :meth:`RecommenderConfig.from_toml` call in progress (per thread / task).
_TOML_SOURCE: ContextVar[TomlConfigSettingsSource | None] = ContextVar(
    "fashion_reco_toml_source", default=None
)


def _has_key(tree: Mapping[str, object], dotted: str) -> bool:
    """Whether the dotted key (``blend.event_weights.view``) is spelled in ``tree`` (aliases included)."""
    node: object = tree
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit():  # `model.mean.2`: an item of an array
            if int(part) >= len(node):
                return False
            node = node[int(part)]
            continue
        if not isinstance(node, Mapping):
            return False
        names = {part, part.rstrip("_")}  # `schema_` is spelled `schema` in files
        found = next((n for n in names if n in node), None)
        if found is None:
            return False
        node = node[found]
    return True


def config_error(exc: ValidationError) -> ConfigError:
    """The first validation error as one :class:`ConfigError` naming the dotted key (secrets never echoed)."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return ConfigError("unknown configuration key", key=key)
    shown = (
        "<hidden>"
        if any(w in key.lower() for w in ("password", "token", "secret", "key"))
        else first.get("input")
    )
    return ConfigError(f"{first['msg']} (got {shown!r})", key=key)
