"""Scoped torch intra-op thread count (``ModelConfig.num_threads``), restored on exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch threads (unchanged when ``None``), then restore the old count."""
    if not num_threads:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
