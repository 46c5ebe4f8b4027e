"""Which packages the warehouse code asks Snowflake for, and a check that Snowflake's channel has them.

Nothing here is copied from the environment you deploy from: the defaults are lower-bounded specs for packages that
Snowflake's Anaconda channel carries (see ``channel_snapshot.json`` beside this module: a dated record of the channel
versions the defaults rely on, the source of each, and the SQL that refreshes it). A user overrides them with
``snowflake.packages`` / ``snowflake.procedure_packages``; ``snowflake.artifact_repository`` resolves them from
another repository (PyPI through Snowflake's artifact repository) instead.

Before anything is created on an account, :func:`check_packages` reads ``INFORMATION_SCHEMA.PACKAGES`` for the
requested names and the configured ``runtime_version`` and raises **one** :class:`SnowflakeError` listing every
package that is missing or has no version matching its spec, with the versions that do exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from fashion_reco.errors import ConfigError, SnowflakeError
from fashion_reco.snowflake.identifiers import validate_identifier

if TYPE_CHECKING:
    from snowflake.snowpark import Session

    from fashion_reco.config import SnowflakeConfig

__all__ = [
    "DEFAULT_PACKAGES",
    "PACKAGES_VIEW",
    "PROCEDURE_PACKAGES",
    "ChannelSnapshot",
    "PackageSpec",
    "available_versions",
    "channel_snapshot",
    "check_packages",
    "missing_packages",
    "packages_query_sql",
    "parse_spec",
    "procedure_packages",
    "udf_packages_for",
]

Runtime = Literal["onnx", "torch"]

# What each UDF runtime imports inside the warehouse, as channel names with lower bounds (never exact local pins).
DEFAULT_PACKAGES: dict[str, tuple[str, ...]] = {
    "onnx": (
        "onnxruntime>=1.16",
        "numpy>=1.24",
        "pandas>=1.5",
        "pillow>=9.4",
        "pydantic>=2.5",
        "snowflake-snowpark-python>=1.11",  # SnowflakeFile, for the handler that reads staged photos
    ),
    "torch": (
        "pytorch>=2.0",
        "torchvision>=0.15",
        "safetensors>=0.4",
        "pillow>=9.4",
        "numpy>=1.24",
        "pandas>=1.5",
        "pydantic>=2.5",
        "pydantic-settings>=2.0",
        "tqdm>=4.64",
    ),
}
# The batch-recommendation procedure: Snowpark itself, the blend's numerics (scipy sparse) and LightGBM for the ranker.
PROCEDURE_PACKAGES: tuple[str, ...] = (
    "snowflake-snowpark-python>=1.11",
    "numpy>=1.24",
    "pandas>=1.5",
    "scipy>=1.9",
    "pydantic>=2.5",
    "pydantic-settings>=2.0",
    "lightgbm>=3.3.5",
)

PACKAGES_VIEW = "INFORMATION_SCHEMA.PACKAGES"
_NAME = re.compile(r"[a-z0-9][a-z0-9._\-]*")
_SPEC = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(.*)")


@dataclass(frozen=True)
class PackageSpec:
    """One requested package: its channel name (lower case) and version specifier (possibly empty)."""

    name: str
    specifier: SpecifierSet
    text: str

    def allows(self, version: str) -> bool:
        """Whether ``version`` (as the channel spells it) satisfies the specifier."""
        try:
            return self.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return not str(self.specifier)


def parse_spec(text: str) -> PackageSpec:
    """``"numpy>=1.24"`` → ``PackageSpec("numpy", ">=1.24")``; a spec that is not a plain name + specifier raises."""
    match = _SPEC.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"not a package spec: {text!r} (expected e.g. 'numpy' or 'numpy>=1.24')", key="packages"
        )
    name, rest = match.group(1).lower(), match.group(2).strip()
    if rest.startswith("=") and not rest.startswith("=="):
        rest = "=" + rest  # conda's "numpy=1.26" means "==1.26.*"-ish; treat as ==
    try:
        specifier = SpecifierSet(rest)
    except InvalidSpecifier:
        raise ConfigError(
            f"invalid version specifier {rest!r} in package spec {text!r}", key="packages"
        ) from None
    if not _NAME.fullmatch(name):
        raise ConfigError(f"invalid package name in {text!r}", key="packages")
    return PackageSpec(name, specifier, f"{name}{specifier}")


def udf_packages_for(config: SnowflakeConfig) -> list[str]:
    """The UDF's package specs: ``config.packages`` or the defaults for ``config.udf_runtime`` (validated)."""
    specs = config.packages if config.packages is not None else DEFAULT_PACKAGES[config.udf_runtime]
    return [parse_spec(s).text for s in specs]


def procedure_packages(config: SnowflakeConfig) -> list[str]:
    """The stored procedure's package specs: ``config.procedure_packages`` or :data:`PROCEDURE_PACKAGES`."""
    specs = config.procedure_packages if config.procedure_packages is not None else PROCEDURE_PACKAGES
    return [parse_spec(s).text for s in specs]


# -- the check ------------------------------------------------------------------------------------------------------
def packages_query_sql(names: Iterable[str], runtime_version: str, view: str = PACKAGES_VIEW) -> str:
    """SQL text listing the channel's versions of ``names`` for ``runtime_version`` (names and version validated)."""
    checked = sorted({parse_spec(n).name for n in names})
    if not re.fullmatch(r"3\.\d{1,2}", runtime_version):
        raise ConfigError(f"invalid runtime_version {runtime_version!r}", key="snowflake.runtime_version")
    target = ".".join(f'"{p}"' for p in validate_identifier(view, "table").split("."))
    in_list = ", ".join(f"'{n}'" for n in checked)  # names match [a-z0-9._-]: no quote can appear
    return (
        f'SELECT "PACKAGE_NAME", "VERSION" FROM {target}\n'  # noqa: S608 - validated names only
        f"WHERE \"LANGUAGE\" = 'python' AND \"RUNTIME_VERSION\" = '{runtime_version}'\n"
        f'  AND "PACKAGE_NAME" IN ({in_list})\n'
        'ORDER BY "PACKAGE_NAME", "VERSION"'
    )


def available_versions(
    session: Session, names: Iterable[str], runtime_version: str, view: str = PACKAGES_VIEW
) -> dict[str, list[str]]:
    """``{package: [versions]}`` from ``view`` (INFORMATION_SCHEMA.PACKAGES) via Snowpark DataFrames.

    The DataFrame form runs on an account and, over a table of the same columns, in local testing.
    """
    from snowflake.snowpark import functions as F

    wanted = sorted({parse_spec(n).name for n in names})
    if not wanted:
        return {}
    rows = (
        session.table(validate_identifier(view, "table"))
        .filter(
            (F.col("LANGUAGE") == F.lit("python"))
            & (F.col("RUNTIME_VERSION") == F.lit(runtime_version))
            & F.col("PACKAGE_NAME").isin(wanted)
        )
        .select("PACKAGE_NAME", "VERSION")
        .collect()
    )
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for row in rows:
        found.setdefault(str(row["PACKAGE_NAME"]).lower(), []).append(str(row["VERSION"]))
    return {name: _sorted_versions(versions) for name, versions in found.items()}


def _sorted_versions(versions: Iterable[str]) -> list[str]:
    def key(v: str) -> tuple[int, Version | str]:
        try:
            return (1, Version(v))
        except InvalidVersion:
            return (0, v)

    return sorted(set(versions), key=key)


def missing_packages(specs: Sequence[str], available: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per spec that ``available`` cannot satisfy (empty when all can), with the versions that exist."""
    problems = []
    for text in specs:
        spec = parse_spec(text)
        versions = list(available.get(spec.name, []))
        if not versions:
            problems.append(f"{spec.text}: not in the channel for this runtime")
        elif not any(spec.allows(v) for v in versions):
            shown = versions[-8:]
            more = f" (and {len(versions) - len(shown)} older)" if len(versions) > len(shown) else ""
            problems.append(f"{spec.text}: no matching version; available: {', '.join(shown)}{more}")
    return problems


def check_packages(
    session: Session,
    specs: Sequence[str],
    runtime_version: str,
    *,
    view: str = PACKAGES_VIEW,
    what: str = "UDF",
) -> dict[str, list[str]]:
    """Raise one :class:`SnowflakeError` listing every spec the channel lacks; returns the versions found."""
    available = available_versions(session, specs, runtime_version, view)
    problems = missing_packages(specs, available)
    if problems:
        raise SnowflakeError(
            f"{len(problems)} package(s) requested for the {what} are not available in Snowflake's Anaconda "
            f"channel for Python {runtime_version} (nothing was created): "
            + "; ".join(problems)
            + ". Change "
            "snowflake.packages / snowflake.procedure_packages, or set snowflake.artifact_repository for PyPI.",
            key="snowflake.packages",
        )
    return available


# -- the snapshot ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelSnapshot:
    """A dated record of channel versions (``channel_snapshot.json``) and how to refresh it."""

    date: str
    runtime_version: str
    refresh_sql: str
    source: str
    versions: dict[str, list[str]]


@lru_cache(maxsize=1)
def channel_snapshot() -> ChannelSnapshot:
    """The bundled ``channel_snapshot.json``."""
    raw = json.loads((Path(__file__).with_name("channel_snapshot.json")).read_text(encoding="utf-8"))
    return ChannelSnapshot(
        date=raw["date"],
        runtime_version=raw["runtime_version"],
        refresh_sql=raw["refresh_sql"],
        source=raw["source"],
        versions={k: list(v) for k, v in raw["versions"].items()},
    )
