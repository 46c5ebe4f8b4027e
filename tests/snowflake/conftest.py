"""Shared Snowflake-layer fixtures: one local testing session for the whole run."""

from __future__ import annotations

from typing import Any

import pytest
from snowflake.snowpark import Session

from fashion_reco.config import SnowflakeConfig
from fashion_reco.snowflake.session import create_session


@pytest.fixture(scope="session")
def local_session() -> Session:
    session = create_session(SnowflakeConfig(mode="local"))
    yield session
    session.close()


class RecordingSession:
    """Stands in for an account session: records SQL text and UDF registrations instead of sending them."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.registered: list[dict[str, Any]] = []
        outer = self

        class _Result:
            def collect(self) -> list[Any]:
                return []

        class _Udf:
            def register(self, **kwargs: Any) -> str:
                outer.registered.append(kwargs)
                return f"udf:{kwargs['name']}"

        self._result = _Result()
        self.udf = _Udf()

    def sql(self, text: str) -> Any:
        self.statements.append(text)
        return self._result


@pytest.fixture
def recording_session() -> RecordingSession:
    """A stand-in for an account session that records SQL text and UDF registrations."""
    return RecordingSession()
