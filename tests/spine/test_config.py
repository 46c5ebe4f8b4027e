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
    assert cfg.model.image_size == 128
    budget = cfg.model.max_train_seconds
    assert budget <= 15 * 60, "the default training budget must fit the 15-minute promise"
    assert cfg.snowflake.mode == "local"
    assert cfg.model.effective_resize_size == round(128 * 8 / 7)


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
