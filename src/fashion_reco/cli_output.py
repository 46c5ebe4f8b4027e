"""How the CLI shows or writes tables and embeddings (CSV/parquet/npy chosen by suffix, written atomically)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from fashion_reco.atomic import atomic_open, atomic_write_bytes
from fashion_reco.columns import Columns
from fashion_reco.errors import ConfigError

__all__ = ["write_embeddings", "write_frame"]


def write_frame(frame: pd.DataFrame, out: Path | None) -> None:
    """Print ``frame`` as an aligned table, or write it to ``out`` (.csv or .parquet)."""
    if out is None:
        with pd.option_context("display.max_rows", 500, "display.width", 160, "display.max_colwidth", 60):
            typer.echo(frame.to_string(index=False))
        return
    if out.suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(out, buffer.getvalue())
    elif out.suffix == ".csv":
        with atomic_open(out, "w", encoding="utf-8") as handle:
            frame.to_csv(handle, index=False)
    else:
        raise ConfigError("output must end in .csv or .parquet", file=out)
    typer.echo(f"{len(frame)} rows written to {out}")


def write_embeddings(item_ids: np.ndarray, vectors: np.ndarray, out: Path) -> None:
    """Write embeddings as parquet (``item_id``, ``embedding`` list column) or a bare ``.npy`` matrix."""
    if out.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, vectors.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(out, buffer.getvalue())
    elif out.suffix == ".parquet":
        frame = pd.DataFrame({Columns.ITEM_ID: item_ids, "embedding": list(vectors.astype(np.float32))})
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(out, buffer.getvalue())
    else:
        raise ConfigError("embeddings output must end in .parquet or .npy", file=out)
