"""Sessions: local testing by default; account mode from config, env vars or connections.toml; secrets never leak."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from fashion_reco.config import RecommenderConfig, SnowflakeConfig
from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.backend import LocalTestingBackend, backend_for
from fashion_reco.snowflake.session import connection_parameters, create_session, is_local_session

PASSWORD = "hunter2-Xy9!QzSECRET"  # noqa: S105 - a fake secret that must never leak
# Port 9 (discard) on the loopback interface refuses connections at once: a real connector failure, no network.
UNREACHABLE = {"host": "127.0.0.1", "port": 9, "protocol": "http", "login_timeout": 5, "socket_timeout": 2}


def test_default_config_gives_a_local_testing_session(local_session) -> None:
    assert is_local_session(local_session)
    assert isinstance(backend_for(local_session), LocalTestingBackend)
    assert local_session.create_dataframe([[1, "a"]], schema=["N", "S"]).collect()[0]["S"] == "a"


def test_explicit_fields_beat_environment_variables() -> None:
    config = SnowflakeConfig(
        mode="account", account="acme-eu1", user="alice", password=PASSWORD, role="ANALYST"
    )
    env = {"SNOWFLAKE_ACCOUNT": "other", "SNOWFLAKE_WAREHOUSE": "RECO_WH", "SNOWFLAKE_SCHEMA": "PUBLIC"}
    params = connection_parameters(config, environ=env)
    assert params == {
        "account": "acme-eu1",
        "user": "alice",
        "password": PASSWORD,
        "role": "ANALYST",
        "warehouse": "RECO_WH",
        "schema": "PUBLIC",
    }


def test_environment_variables_alone_are_enough() -> None:
    env = {"SNOWFLAKE_ACCOUNT": "acme", "SNOWFLAKE_USER": "bob", "SNOWFLAKE_PASSWORD": PASSWORD}
    params = connection_parameters(SnowflakeConfig(mode="account"), environ=env)
    assert params == {"account": "acme", "user": "bob", "password": PASSWORD}


def test_connection_name_is_passed_through_with_overrides() -> None:
    config = RecommenderConfig(
        snowflake={"mode": "account", "connection_name": "prod", "warehouse": "WH", "schema": "RECO"}
    ).snowflake
    assert connection_parameters(config, environ={}) == {
        "connection_name": "prod",
        "warehouse": "WH",
        "schema": "RECO",
    }


def test_account_mode_without_account_or_connection_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        connection_parameters(SnowflakeConfig(mode="account"), environ={})
    assert info.value.key == "snowflake.account"


def _assert_no_secret(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    rendered = "".join(traceback.format_exception(exc))
    assert PASSWORD not in rendered
    assert exc.__cause__ is None and exc.__context__ is None
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(exc.args)


def test_failed_connection_names_account_and_user_but_never_the_password(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SNOWFLAKE_PASSWORD", raising=False)
    caplog.set_level(logging.DEBUG)
    config = SnowflakeConfig(mode="account", account="acme-xy12345", user="alice", password=PASSWORD)
    with pytest.raises(SnowflakeError) as info:
        create_session(config, connection=UNREACHABLE)
    message = str(info.value)
    assert "could not connect" in message and "'acme-xy12345'" in message and "'alice'" in message
    assert "250001" in message  # the connector's own reason: a real login attempt was refused
    _assert_no_secret(info.value, caplog)


def test_connector_error_text_containing_the_password_is_scrubbed(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snowflake.snowpark import Session

    class Boom(Exception):
        pass

    def create(self):  # stands in for a connector that echoes its arguments back
        raise Boom(f"login failed for password={PASSWORD}")

    monkeypatch.setattr(Session.SessionBuilder, "create", create)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SnowflakeError) as info:
        create_session(SnowflakeConfig(mode="account", account="acme", user="alice", password=PASSWORD))
    assert "password=***" in str(info.value)
    _assert_no_secret(info.value, caplog)


_TOML_PROBE = """
import logging, sys, traceback
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import SnowflakeError
from fashion_reco.snowflake.session import create_session
try:
    create_session(SnowflakeConfig(mode="account", connection_name="reco_test"))
except SnowflakeError as exc:
    print("ERROR:", exc)
    traceback.print_exception(exc, file=sys.stdout)
"""


def test_connections_toml_entry_is_used(tmp_path: Path) -> None:
    # The connector reads SNOWFLAKE_HOME when it is imported, so the probe runs in a fresh interpreter.
    toml = tmp_path / "connections.toml"
    toml.write_text(
        '[reco_test]\naccount = "acme-toml"\nuser = "carol"\n'
        f'password = "{PASSWORD}"\nhost = "127.0.0.1"\nport = 9\nprotocol = "http"\nlogin_timeout = 5\n',
        encoding="utf-8",
    )
    toml.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNOWFLAKE_")}
    env["SNOWFLAKE_HOME"] = str(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", _TOML_PROBE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = probe.stdout + probe.stderr
    assert "ERROR:" in output, output[-2000:]
    error_line = next(line for line in output.splitlines() if line.startswith("ERROR:"))
    assert "connection_name='reco_test'" in error_line
    assert "250001" in error_line  # the toml's host/port were used: a real connection attempt was refused
    assert PASSWORD not in output
