"""The configuration tree: defaults, TOML, environment variables, and errors that name the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fashion_reco.config import RecommenderConfig
from fashion_reco.errors import ConfigError, FashionRecoError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FASHION_RECO_") and name != "FASHION_RECO_DATA":
            monkeypatch.delenv(name)


def test_defaults_fit_the_cpu_budget() -> None:
    cfg = RecommenderConfig()
    assert cfg.model.weights is None
    assert (
        cfg.model.image_size == 64
    )  # from-scratch training on 2 cores (docs/evaluation.md, the image model)
    budget = cfg.model.max_train_seconds
    assert budget <= 15 * 60, "the default training budget must fit the 15-minute promise"
    assert cfg.snowflake.mode == "local"
    assert cfg.model.effective_resize_size == round(64 * 8 / 7)


def test_toml_file_sets_nested_sections(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(
        '[model]\nimage_size = 96\nweights = "DEFAULT"\n[blend]\nhalf_life_days = 3.5\n'
        '[snowflake]\nmode = "account"\nschema = "RECO"\n'
    )
    cfg = RecommenderConfig.from_toml(path)
    assert cfg.model.image_size == 96
    assert cfg.model.weights == "DEFAULT"
    assert cfg.blend.half_life_days == 3.5
    assert cfg.snowflake.mode == "account"
    assert cfg.snowflake.schema_ == "RECO"


def test_unknown_key_in_toml_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text("[model]\nimage_sise = 96\n")
    with pytest.raises(ConfigError) as info:
        RecommenderConfig.from_toml(path)
    assert info.value.key == "model.image_sise"
    assert str(path) in str(info.value) and "unknown configuration key" in str(info.value)


def test_unknown_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'modle'"):
        RecommenderConfig(modle={})


def test_bad_value_names_the_key_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        RecommenderConfig(model={"image_size": 8})
    assert info.value.key == "model.image_size"
    assert "8" in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[model\nimage_size = ")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        RecommenderConfig.from_toml(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        RecommenderConfig.from_toml(tmp_path / "nope.toml")


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASHION_RECO_MODEL__IMAGE_SIZE", "160")
    monkeypatch.setenv("FASHION_RECO_SNOWFLAKE__WAREHOUSE", "RECO_WH")
    cfg = RecommenderConfig()
    assert cfg.model.image_size == 160
    assert cfg.snowflake.warehouse == "RECO_WH"


def test_fashion_reco_data_sets_the_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASHION_RECO_DATA", str(tmp_path))
    assert RecommenderConfig().data.root == tmp_path


def test_unknown_environment_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASHION_RECO_BLEND__HALF_LIFE", "3")
    with pytest.raises(ConfigError, match=r"blend\.half_life"):
        RecommenderConfig()


def test_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RecommenderConfig(snowflake={"password": "hunter2-secret"})
    assert "hunter2-secret" not in repr(cfg)
    assert "hunter2-secret" not in str(cfg.to_toml_dict())
    with pytest.raises(ConfigError) as info:
        RecommenderConfig(snowflake={"password": 12345678})
    assert "12345678" not in str(info.value)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=4))
def test_any_model_section_gives_config_or_error(section: dict[str, int]) -> None:
    try:
        RecommenderConfig(model=section)
    except FashionRecoError:
        pass


# ---------------------------------------------------------------- sources and precedence


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_is_kwargs_then_environment_then_toml_then_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _toml(tmp_path, "[model]\nimage_size = 96\nbatch_size = 8\nseed = 3\n")
    monkeypatch.setenv("FASHION_RECO_MODEL__IMAGE_SIZE", "160")
    monkeypatch.setenv("FASHION_RECO_MODEL__BATCH_SIZE", "16")
    cfg = RecommenderConfig.from_toml(path, model={"batch_size": 32})
    assert cfg.model.batch_size == 32, "keyword arguments win"
    assert cfg.model.image_size == 160, "the environment beats the file"
    assert cfg.model.seed == 3, "the file beats the defaults"
    assert cfg.model.finetune_epochs == RecommenderConfig().model.finetune_epochs


def test_a_toml_file_does_not_leak_into_later_configurations(tmp_path: Path) -> None:
    RecommenderConfig.from_toml(_toml(tmp_path, "[model]\nimage_size = 96\n"))
    assert RecommenderConfig().model.image_size == 64


def test_a_folder_given_as_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder"):
        RecommenderConfig.from_toml(tmp_path)


def test_an_environment_error_is_not_blamed_on_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FASHION_RECO_MODEL__BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as info:
        RecommenderConfig.from_toml(_toml(tmp_path, "[model]\nimage_size = 96\n"))
    assert info.value.key == "model.batch_size" and info.value.context.get("file") is None


# ---------------------------------------------------------------- ranges and finiteness everywhere

NON_FINITE = ("nan", "inf", "-inf")
FLOAT_KEYS = (
    ("blend", "half_life_days"),
    ("blend", "visual_weight"),
    ("blend", "validation_days"),
    ("model", "max_train_seconds"),
    ("model", "lr_head"),
)


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(("section", "key"), FLOAT_KEYS)
def test_non_finite_numbers_are_refused_in_the_api(section: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match="finite") as info:
        RecommenderConfig(**{section: {key: float(value)}})
    assert info.value.key == f"{section}.{key}"


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_are_refused_in_toml_naming_file_and_key(tmp_path: Path, value: str) -> None:
    path = _toml(tmp_path, f"[blend]\nevent_weights = {{ view = {value}, purchase = 5.0 }}\n")
    with pytest.raises(ConfigError, match="finite") as info:
        RecommenderConfig.from_toml(path)
    assert info.value.key == "blend.event_weights.view"
    assert str(path) in str(info.value)


@pytest.mark.parametrize("value", [*NON_FINITE, "NaN", "Infinity"])
def test_non_finite_numbers_are_refused_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FASHION_RECO_BLEND__HALF_LIFE_DAYS", value)
    with pytest.raises(ConfigError, match=r"blend\.half_life_days.*finite"):
        RecommenderConfig()
    monkeypatch.delenv("FASHION_RECO_BLEND__HALF_LIFE_DAYS")
    monkeypatch.setenv("FASHION_RECO_BLEND__EVENT_WEIGHTS", '{"view": "nan"}')
    with pytest.raises(ConfigError, match=r"blend\.event_weights\.view"):
        RecommenderConfig()


def test_assignment_is_validated_too() -> None:
    cfg = RecommenderConfig()
    with pytest.raises(Exception, match="finite"):
        cfg.blend.half_life_days = float("nan")


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("blend", {"event_weights": {"view": -1.0}}, "blend.event_weights.view"),
        ("model", {"mean": (0.5, 0.5, 2.0)}, "model.mean.2"),
        ("model", {"std": (0.2, 0.0, 0.2)}, "model.std.1"),
        ("model", {"seed": -1}, "model.seed"),
        ("model", {"resize_size": 0}, "model.resize_size"),
        ("blend", {"k": 0}, "blend.k"),
    ],
)
def test_out_of_range_numbers_name_the_key(section: str, values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        RecommenderConfig(**{section: values})
    assert info.value.key == key


def test_all_signal_weights_zero_is_refused() -> None:
    zero = {f"{s}_weight": 0.0 for s in ("visual", "behaviour", "popularity", "trend", "profile")}
    with pytest.raises(ConfigError, match="at least one signal weight"):
        RecommenderConfig(blend=zero)


@given(
    st.dictionaries(
        st.sampled_from(["half_life_days", "visual_weight", "k", "trend_half_life_days", "test_days"]),
        st.one_of(st.floats(), st.integers(-5, 50), st.text(max_size=5)),
        max_size=3,
    )
)
def test_any_blend_section_gives_a_finite_config_or_an_error(section: dict[str, object]) -> None:
    import math

    try:
        cfg = RecommenderConfig(blend=section)
    except FashionRecoError:
        return
    assert all(math.isfinite(float(v)) for v in cfg.blend.model_dump().values() if isinstance(v, float))


def test_get_config_and_from_config_round_trip() -> None:
    """RecTools style: a model's configuration rebuilds an unfitted twin; plain dicts (as saved) work too."""
    from fashion_reco.facade import FashionRecommender
    from fashion_reco.model.image_model import ImageModel

    cfg = RecommenderConfig(model={"image_size": 64, "seed": 3}, blend={"k": 5})
    reco = FashionRecommender(cfg)
    assert reco.get_config() == cfg and reco.get_config() is not cfg
    twin = FashionRecommender.from_config(cfg.to_toml_dict())
    assert twin.get_config().to_toml_dict() == cfg.to_toml_dict()
    with pytest.raises(ConfigError, match=r"blend\.k"):
        FashionRecommender.from_config({"blend": {"k": 0}})

    model = ImageModel.from_config({"image_size": 64, "seed": 3}, classes=["a", "b"])
    assert model.get_config().image_size == 64 and model.classes == ["a", "b"]
    assert ImageModel.from_config(model.get_config(), classes=["a", "b"]).get_config() == model.get_config()


def test_from_dict_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASHION_RECO_MODEL__IMAGE_SIZE", "160")
    assert RecommenderConfig().model.image_size == 160
    assert RecommenderConfig.from_dict({"model": {"seed": 1}}).model.image_size == 64


def test_an_array_item_in_toml_is_blamed_on_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[model]\nmean = [0.5, 0.5, nan]\nstd = [0.2, 0.2, 0.2]\n")
    with pytest.raises(ConfigError) as info:
        RecommenderConfig.from_toml(path)
    assert info.value.key == "model.mean.2" and str(path) in str(info.value)
