"""Configuration: one pydantic model tree, loadable from TOML, environment variables and keyword arguments.

Precedence, highest first: explicit keyword arguments, ``FASHION_RECO_<SECTION>__<KEY>`` environment variables, the
TOML file, defaults. ``FASHION_RECO_DATA`` is the data root (``data.root``), as in the rest of the tooling. Unknown keys
anywhere are an error that names the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from fashion_reco.errors import ConfigError

__all__ = [
    "BlendConfig",
    "DataConfig",
    "ModelConfig",
    "RecommenderConfig",
    "SnowflakeConfig",
    "default_data_root",
]

DATA_ENV = "FASHION_RECO_DATA"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_data_root() -> Path:
    """The shared data folder: ``$FASHION_RECO_DATA`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get(DATA_ENV) or Path("..") / "shared" / "data")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class DataConfig(_Section):
    """Where data lives and how images are validated and batched."""

    root: Path = Field(default_factory=default_data_root, description="Data root holding clothing/ and online_retail/.")
    min_image_side: int = Field(16, ge=1, description="Smallest accepted width/height in pixels.")
    max_image_pixels: int = Field(40_000_000, ge=1, description="Decompression-bomb limit (width * height).")
    on_bad_image: Literal["skip", "raise"] = "skip"
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes for decoding.")
    event_type_mapping: dict[str, Literal["view", "add_to_cart", "purchase"]] = Field(
        default_factory=dict, description="Maps a log's own event names onto view / add_to_cart / purchase."
    )
    s3_max_concurrency: int = Field(8, ge=1)
    s3_retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    s3_max_attempts: int = Field(5, ge=1)


class ModelConfig(_Section):
    """Image model: architecture, weights, input size and the training budget.

    Defaults fit a few thousand photos on 2 CPU cores in well under 15 minutes: 128 px input, a frozen-backbone head
    phase, then fine-tuning with early stopping and a wall-clock budget.
    """

    architecture: Literal["resnet18"] = "resnet18"
    weights: str | None = Field(
        None, description="torchvision weights name ('DEFAULT', 'IMAGENET1K_V1'), a local file path, or None."
    )
    image_size: int = Field(128, ge=32, le=1024, description="Square crop fed to the network.")
    resize_size: int | None = Field(None, description="Shorter side before the centre crop; default image_size*8/7.")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    embedding_dim: Literal[512] = 512
    head_epochs: int = Field(2, ge=0, description="Epochs training only the new head (backbone frozen).")
    finetune_epochs: int = Field(6, ge=0, description="Maximum epochs fine-tuning the whole network.")
    patience: int = Field(2, ge=1, description="Early stopping: epochs without validation macro-F1 improvement.")
    max_train_seconds: float = Field(
        600.0, gt=0, description="Wall-clock training budget, checked after every batch (then one validation pass)."
    )
    batch_size: int = Field(64, ge=1)
    lr_head: float = Field(3e-3, gt=0)
    lr_backbone: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    class_balancing: Literal["weighted_loss", "sampler", "none"] = "weighted_loss"
    augment: bool = True
    max_train_images: int | None = Field(None, ge=1, description="Subsample the training set (stratified).")
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 0
    compile: bool = Field(False, description="torch.compile the embedding model (pays off above a few thousand images).")
    channels_last: bool = True
    num_threads: int | None = Field(None, ge=1, description="torch intra-op threads; default: all cores.")

    @property
    def effective_resize_size(self) -> int:
        """Shorter side before the centre crop (torchvision's 256/224 ratio unless set)."""
        return self.resize_size or round(self.image_size * 8 / 7)

    @model_validator(mode="after")
    def _check_resize(self) -> ModelConfig:
        if self.resize_size is not None and self.resize_size < self.image_size:
            raise ValueError(f"resize_size ({self.resize_size}) must be >= image_size ({self.image_size})")
        return self


class BlendConfig(_Section):
    """Personalised ranking: signal weights, event weights, recency half-lives and how they are tuned."""

    visual_weight: float = Field(1.0, ge=0)
    behaviour_weight: float = Field(1.0, ge=0)
    popularity_weight: float = Field(0.2, ge=0)
    trend_weight: float = Field(0.1, ge=0)
    profile_weight: float = Field(0.3, ge=0)
    event_weights: dict[Literal["view", "add_to_cart", "purchase"], float] = Field(
        default_factory=lambda: {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    )
    half_life_days: float = Field(14.0, gt=0, description="Recency decay of a customer's history.")
    trend_half_life_days: float = Field(3.0, gt=0, description="Recency decay of item popularity ('trend').")
    tune: bool = Field(True, description="Learn weights and half-lives on a time-split validation window.")
    tune_method: Literal["grid", "optuna"] = "grid"
    tune_trials: int = Field(40, ge=1)
    tune_metric: Literal["ndcg", "map", "recall", "precision", "hit_rate"] = "ndcg"
    validation_days: float = Field(7.0, gt=0, description="Days at the end of training data used to tune.")
    test_days: float = Field(7.0, gt=0, description="Days held out by evaluate's time split.")
    k: int = Field(12, ge=1)
    exact_max_items: int = Field(200_000, ge=1, description="Above this catalogue size use the ANN backend.")
    ann_backend: Literal["faiss", "none"] = "faiss"
    similarity_chunk_size: int = Field(2048, ge=1, description="Query rows scored per block (bounds memory).")


class SnowflakeConfig(_Section):
    """Where to deploy: the embedded local testing session (default) or a real account."""

    mode: Literal["local", "account"] = "local"
    connection_name: str | None = Field(None, description="Name in connections.toml (account mode).")
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    authenticator: str | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    stage: str = "FASHION_RECO_MODELS"
    table_prefix: str = "FASHION_RECO_"
    udf_name: str = "FASHION_RECO_EMBED_IMAGE"
    max_batch_size: int = Field(64, ge=1)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class _EnvSource(EnvSettingsSource):
    """Environment source where ``FASHION_RECO_DATA`` (a path) sets ``data.root`` instead of the whole section."""

    def __call__(self) -> dict[str, Any]:
        raw = os.environ.get(DATA_ENV)
        if raw is not None and not raw.lstrip().startswith("{"):
            saved = self.env_vars.pop(DATA_ENV.lower(), None), self.env_vars.pop(DATA_ENV, None)
            try:
                values = super().__call__()
            finally:
                for key, value in zip((DATA_ENV.lower(), DATA_ENV), saved, strict=True):
                    if value is not None:
                        self.env_vars[key] = value
            values.setdefault("data", {})
            if isinstance(values["data"], dict):
                values["data"].setdefault("root", raw)
            return values
        return super().__call__()


class RecommenderConfig(BaseSettings):
    """The whole configuration tree: ``data``, ``model``, ``blend`` and ``snowflake`` sections."""

    model_config = SettingsConfigDict(
        env_prefix="FASHION_RECO_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    blend: BlendConfig = Field(default_factory=BlendConfig)
    snowflake: SnowflakeConfig = Field(default_factory=SnowflakeConfig)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, source="configuration") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> RecommenderConfig:
        """Load a TOML file (sections ``[data]``, ``[model]``, ``[blend]``, ``[snowflake]``); env vars still apply."""
        file = Path(path)
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config file not found", file=file) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=file) from None
        merged = _deep_merge(raw, overrides)
        try:
            return cls(**merged)
        except ConfigError as exc:
            raise ConfigError(exc.reason, file=file, **{k: v for k, v in exc.context.items() if k != "file"}) from None

    def to_toml_dict(self) -> dict[str, Any]:
        """Plain-JSON view of the configuration without secrets (safe to log or save beside a model)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"snowflake": {"password"}})

    @field_validator("data", "model", "blend", "snowflake", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return {} if value is None else value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return ConfigError("unknown configuration key", key=key)
    shown = "<hidden>" if any(w in key.lower() for w in ("password", "token", "secret", "key")) else first.get("input")
    return ConfigError(f"{first['msg']} (got {shown!r})", key=key)
