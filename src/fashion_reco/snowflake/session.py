"""Open a Snowpark session: the embedded local testing engine (default) or a real Snowflake account.

``mode = "local"`` needs nothing: Snowpark's local testing session runs DataFrame queries, UDFs and stages in this
process. ``mode = "account"`` connects for real, from (highest precedence first)

1. explicit ``SnowflakeConfig`` fields (``account``, ``user``, ``password``, ``authenticator``, ``role``,
   ``warehouse``, ``database``, ``schema``), which the config tree also fills from ``FASHION_RECO_SNOWFLAKE__*``;
2. the standard ``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER``, ``SNOWFLAKE_PASSWORD``, ``SNOWFLAKE_AUTHENTICATOR``,
   ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``, ``SNOWFLAKE_DATABASE``, ``SNOWFLAKE_SCHEMA`` environment variables;
3. the ``connection_name`` entry of the standard ``connections.toml`` (``$SNOWFLAKE_HOME`` or ``~/.snowflake``).

Secrets never reach a log line or an error message: the password is scrubbed from the connector's error text and
the original exception is not chained.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fashion_reco.config import SnowflakeConfig
from fashion_reco.errors import ConfigError, SnowflakeError

if TYPE_CHECKING:
    from snowflake.snowpark import Session

__all__ = ["ENV_VARS", "connection_parameters", "create_session", "is_local_session"]

log = logging.getLogger(__name__)

# config field -> standard environment variable used when the field is unset
ENV_VARS: dict[str, str] = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "password": "SNOWFLAKE_PASSWORD",
    "authenticator": "SNOWFLAKE_AUTHENTICATOR",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
    "schema": "SNOWFLAKE_SCHEMA",
}
_SECRET_KEYS = ("password", "token", "private_key", "passcode", "secret")


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_KEYS)


def connection_parameters(
    config: SnowflakeConfig, extra: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The keyword arguments handed to ``Session.builder.configs`` for ``mode = "account"`` (holds the secret)."""
    env = os.environ if environ is None else environ
    params: dict[str, Any] = {}
    if config.connection_name:
        params["connection_name"] = config.connection_name
    values = {
        "account": config.account,
        "user": config.user,
        "password": config.password.get_secret_value() if config.password is not None else None,
        "authenticator": config.authenticator,
        "role": config.role,
        "warehouse": config.warehouse,
        "database": config.database,
        "schema": config.schema_,
    }
    for key, value in values.items():
        chosen = value if value not in (None, "") else env.get(ENV_VARS[key]) or None
        if chosen is not None:
            params[key] = chosen
    params.update(dict(extra or {}))
    if "connection_name" not in params and not params.get("account"):
        raise ConfigError(
            "snowflake.mode = 'account' needs snowflake.connection_name (an entry of connections.toml) or "
            "snowflake.account (or the SNOWFLAKE_ACCOUNT environment variable)",
            key="snowflake.account",
        )
    return params


def _describe(params: Mapping[str, Any]) -> str:
    shown = []
    for key in (
        "connection_name",
        "account",
        "user",
        "role",
        "warehouse",
        "database",
        "schema",
        "authenticator",
    ):
        if params.get(key):
            shown.append(f"{key}={params[key]!r}")
    return ", ".join(shown) or "no parameters"


def _scrub(text: str, params: Mapping[str, Any]) -> str:
    for key, value in params.items():
        if _is_secret(key) and isinstance(value, str) and value:
            text = text.replace(value, "***")
    return text


def create_session(
    config: SnowflakeConfig | None = None, *, connection: Mapping[str, Any] | None = None
) -> Session:
    """A Snowpark session for ``config.mode``: local testing (``"local"``) or a real account (``"account"``).

    ``connection`` adds or overrides raw connector parameters (``host``, ``port``, ``private_key_file``,
    ``login_timeout`` …) in account mode. A failed connection raises :class:`SnowflakeError` naming the account and
    user, never the password.
    """
    from snowflake.snowpark import Session

    config = config or SnowflakeConfig()
    if config.mode == "local":
        log.info("opening a Snowpark local testing session")
        session = Session.SessionBuilder().config("local_testing", True).create()
        from fashion_reco.snowflake.backend import LocalTestingBackend

        LocalTestingBackend(session)  # installs the local emulations (vector similarity) once
        return session

    params = connection_parameters(config, connection)
    described = _describe(params)
    log.info("connecting to Snowflake (%s)", described)
    failure: SnowflakeError | None = None
    try:
        # A builder of our own: options (and the password) never linger on a shared ``Session.builder``.
        session = Session.SessionBuilder().configs(params).create()
    except Exception as exc:  # the connector raises many types; all mean "could not connect"
        reason = _scrub(f"{type(exc).__name__}: {exc}", params)
        failure = SnowflakeError(
            f"could not connect to Snowflake account {params.get('account', '(from connections.toml)')!r} "
            f"as user {params.get('user', '(from connections.toml)')!r} "
            f"({described}): {reason}",
            key="snowflake",
        )
    if (
        failure is not None
    ):  # raised outside the handler: the connector's exception is neither cause nor context
        raise failure
    log.info("connected to Snowflake (%s)", described)
    return session


def is_local_session(session: Session) -> bool:
    """True for a Snowpark local testing session."""
    from snowflake.snowpark.mock._connection import MockServerConnection

    return isinstance(getattr(session, "_conn", None), MockServerConnection)
