"""Package specs for the warehouse: defaults from the channel (not the local env), and one clear error when missing."""

from __future__ import annotations

import datetime as dt
import re
from importlib.metadata import version

import pandas as pd
import pytest

from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.packages import (
    DEFAULT_PACKAGES,
    PROCEDURE_PACKAGES,
    channel_snapshot,
    check_packages,
    missing_packages,
    packages_query_sql,
    parse_spec,
    procedure_packages,
    udf_packages_for,
)


def test_defaults_are_satisfied_by_the_dated_channel_snapshot() -> None:
    snapshot = channel_snapshot()
    assert dt.date.fromisoformat(snapshot.date) <= dt.date.today()
    assert snapshot.runtime_version == SnowflakeConfig().runtime_version == "3.11"
    for runtime, specs in DEFAULT_PACKAGES.items():
        assert missing_packages(list(specs), snapshot.versions) == [], runtime
    assert missing_packages(list(PROCEDURE_PACKAGES), snapshot.versions) == []
    # the refresh query asks for every package the defaults rely on
    names = {parse_spec(s).name for specs in DEFAULT_PACKAGES.values() for s in specs}
    names |= {parse_spec(s).name for s in PROCEDURE_PACKAGES}
    for name in names:
        assert f"'{name}'" in snapshot.refresh_sql
        assert name in snapshot.versions


def test_defaults_are_not_copied_from_the_local_environment() -> None:
    installed = {"numpy": version("numpy"), "pandas": version("pandas"), "pillow": version("pillow")}
    for specs in (*DEFAULT_PACKAGES.values(), PROCEDURE_PACKAGES):
        for text in specs:
            spec = parse_spec(text)
            assert "==" not in text
            if spec.name in installed:
                assert installed[spec.name] not in text
    # the torch-free runtime asks for no torch at all
    assert not any(parse_spec(s).name in {"pytorch", "torchvision"} for s in DEFAULT_PACKAGES["onnx"])


def test_user_controls_the_packages() -> None:
    config = SnowflakeConfig(packages=["numpy==1.26.4", "Pillow>=10", "onnxruntime"])
    assert udf_packages_for(config) == ["numpy==1.26.4", "pillow>=10", "onnxruntime"]
    assert udf_packages_for(SnowflakeConfig(udf_runtime="torch"))[0].startswith("pytorch")
    assert procedure_packages(SnowflakeConfig(procedure_packages=["scipy"])) == ["scipy"]
    with pytest.raises(ConfigError, match=r"not a package spec|invalid"):
        udf_packages_for(SnowflakeConfig(packages=["numpy'); DROP TABLE X; --"]))


@pytest.mark.parametrize("bad", ["", "==1.0", "numpy>>1", "nu mpy"])
def test_bad_specs_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec(bad)


def test_query_sql_is_validated_text() -> None:
    sql = packages_query_sql(["numpy>=1.24", "pillow"], "3.11")
    assert "\"RUNTIME_VERSION\" = '3.11'" in sql
    assert "IN ('numpy', 'pillow')" in sql
    assert sql.startswith('SELECT "PACKAGE_NAME", "VERSION" FROM "INFORMATION_SCHEMA"."PACKAGES"')
    with pytest.raises(ConfigError):
        packages_query_sql(["numpy"], "3.11'; DROP")


@pytest.fixture(scope="module")
def packages_view(local_session) -> str:
    """A table with INFORMATION_SCHEMA.PACKAGES' columns, filled from the snapshot plus other runtimes' rows."""
    rows = [
        {"PACKAGE_NAME": name, "VERSION": v, "LANGUAGE": "python", "RUNTIME_VERSION": "3.11"}
        for name, versions in channel_snapshot().versions.items()
        for v in versions
    ]
    rows.append(
        {"PACKAGE_NAME": "onnxruntime", "VERSION": "9.9.9", "LANGUAGE": "python", "RUNTIME_VERSION": "3.8"}
    )
    local_session.create_dataframe(pd.DataFrame(rows)).write.save_as_table(
        "TEST_PACKAGES_VIEW", mode="overwrite"
    )
    return "TEST_PACKAGES_VIEW"


def test_check_passes_for_the_defaults(local_session, packages_view: str) -> None:
    found = check_packages(local_session, list(DEFAULT_PACKAGES["onnx"]), "3.11", view=packages_view)
    assert found["onnxruntime"] == channel_snapshot().versions["onnxruntime"]


def test_check_fails_once_listing_everything_missing(local_session, packages_view: str) -> None:
    specs = ["numpy==1.26.4", "onnxruntime>=9", "opencv-contrib-nonexistent", "pandas"]
    with pytest.raises(SnowflakeError) as info:
        check_packages(local_session, specs, "3.11", view=packages_view)
    message = str(info.value)
    assert message.count("no matching version") == 2 and "3 package(s)" in message
    assert "numpy==1.26.4: no matching version; available: 1.23.5, 1.24.3" in message
    assert (
        "onnxruntime>=9: no matching version; available: 1.16.3, 1.17.1" in message
    )  # 3.8's 9.9.9 not offered
    assert "opencv-contrib-nonexistent: not in the channel" in message
    assert "pandas" not in re.sub(
        r"snowflake\.\w+|Snowflake's", "", message.split("(nothing was created):")[1]
    )


def test_deploy_preflight_checks_udf_and_procedure_packages_in_one_error(local_session) -> None:
    """The account preflight, run over a local table standing in for INFORMATION_SCHEMA.PACKAGES."""
    from fashion_reco.snowflake.backend import AccountBackend
    from fashion_reco.snowflake.deploy import preflight

    rows = [
        {"PACKAGE_NAME": name, "VERSION": v, "LANGUAGE": "python", "RUNTIME_VERSION": "3.11"}
        for name, versions in channel_snapshot().versions.items()
        for v in versions
        if name not in {"lightgbm", "onnxruntime"}
    ]
    local_session.create_dataframe(pd.DataFrame(rows)).write.save_as_table(
        "INFORMATION_SCHEMA.PACKAGES", mode="overwrite"
    )
    config = SnowflakeConfig(mode="account", account="org-acct")
    with pytest.raises(SnowflakeError) as info:
        preflight(local_session, AccountBackend(local_session), config, also_check=list(PROCEDURE_PACKAGES))
    message = str(info.value)
    assert "for the embedding UDF and batch procedure" in message and "2 package(s)" in message
    assert (
        "onnxruntime>=1.16: not in the channel" in message
        and "lightgbm>=3.3.5: not in the channel" in message
    )
    preflight(
        local_session, AccountBackend(local_session), config.model_copy(update={"check_packages": False})
    )
    preflight(
        local_session,
        AccountBackend(local_session),
        config.model_copy(update={"artifact_repository": "snowflake.snowpark.pypi_shared_repository"}),
    )
