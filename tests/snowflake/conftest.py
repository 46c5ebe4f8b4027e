"""Shared Snowflake-layer fixtures: one local testing session for the whole run."""

from __future__ import annotations

import pytest
from snowflake.snowpark import Session

from fashion_reco.config import SnowflakeConfig
from fashion_reco.snowflake.session import create_session


@pytest.fixture(scope="session")
def local_session() -> Session:
    session = create_session(SnowflakeConfig(mode="local"))
    yield session
    session.close()
