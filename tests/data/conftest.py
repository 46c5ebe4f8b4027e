"""Fixtures for the data-layer tests: the shared S3 test kit (a real moto S3 server on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_KIT_NAME = "fashion_reco_tests_s3_testkit"


def load_s3_testkit() -> ModuleType:
    """tests/data/s3_testkit.py, loaded once per process under one name (tests/reliability loads it the same way)."""
    if _KIT_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_KIT_NAME, Path(__file__).with_name("s3_testkit.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_KIT_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_KIT_NAME]


@pytest.fixture(scope="session")
def s3kit() -> ModuleType:
    return load_s3_testkit()


@pytest.fixture(scope="session")
def aws_env(s3kit: ModuleType):
    """Dummy credentials in the environment for the whole session (see ``s3_testkit.credentials_env``)."""
    with s3kit.credentials_env():
        yield


@pytest.fixture(scope="session")
def moto_endpoint(s3kit: ModuleType, aws_env: None) -> str:
    return s3kit.moto_endpoint()


@pytest.fixture(scope="session")
def big_bucket(s3kit: ModuleType, moto_endpoint: str) -> dict[str, bytes]:
    """The shared 1,500-object bucket; returns the objects a default-suffix fetch of ``photos/`` must produce."""
    return s3kit.big_bucket(moto_endpoint)
