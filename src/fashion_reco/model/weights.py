"""Where the ResNet18 starting weights come from: torchvision's registry, a local file, or nowhere (random init).

``resolve_weights`` accepts

* a ``torchvision.models.ResNet18_Weights`` member, or its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``, any case): loaded
  the torchvision way, ``weights.get_state_dict(progress=False, check_hash=True)``, which reads
  ``$TORCH_HOME/hub/checkpoints/<file>`` when present and downloads otherwise. Without network access the download
  cannot succeed, so the cache is checked first and the download is attempted only when allowed
  (``allow_download``, default: unless ``FASHION_RECO_OFFLINE=1``) with a short socket timeout; any failure becomes a
  :class:`WeightsUnavailableError` naming the exact file and folder, and the two other ways out;
* a local file path: a ``state_dict`` in safetensors (``.safetensors``) or a torch checkpoint read with
  ``torch.load(weights_only=True)`` (a ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper is unwrapped);
* ``None``: random initialisation (what tests use).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlparse

import torch
from torchvision.models import ResNet18_Weights, WeightsEnum, get_model_weights, get_weight

from fashion_reco.errors import WeightsUnavailableError

__all__ = [
    "ARCHITECTURE",
    "OFFLINE_ENV",
    "ResolvedWeights",
    "WeightsLike",
    "hub_checkpoint_path",
    "load_state_dict_file",
    "resolve_weights",
]

OFFLINE_ENV = "FASHION_RECO_OFFLINE"
DOWNLOAD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights choice made concrete. ``kind`` is ``"torchvision"``, ``"file"`` or ``"none"``."""

    kind: Literal["torchvision", "file", "none"]
    name: str | None = None
    path: Path | None = None
    enum: ResNet18_Weights | None = None
    allow_download: bool = True

    @property
    def description(self) -> str:
        if self.kind == "torchvision":
            return f"torchvision ResNet18_Weights.{self.name}"
        if self.kind == "file":
            return f"file {self.path}"
        return "random initialisation"

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """The weights as a ``state_dict`` (None for random init); raises :class:`WeightsUnavailableError`."""
        if self.kind == "none":
            return None
        if self.kind == "file" and self.path is not None:
            return load_state_dict_file(self.path)
        if self.enum is None:
            raise WeightsUnavailableError(f"incomplete weights choice {self!r}")
        return _torchvision_state_dict(self.enum, allow_download=self.allow_download)


def hub_checkpoint_path(weights: ResNet18_Weights) -> Path:
    """Where torchvision caches ``weights``: ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


ARCHITECTURE = "resnet18"
#: What callers may pass as weights: a torchvision enum member, its name, a local file, or None (random init).
WeightsLike: TypeAlias = ResNet18_Weights | str | os.PathLike[str] | None


def _weights_enum() -> type[WeightsEnum]:
    """The architecture's weights enum, from torchvision's model registry."""
    return get_model_weights(ARCHITECTURE)


def _valid_names() -> list[str]:
    return list(_weights_enum().__members__)


def _registered(text: str) -> WeightsEnum | None:
    """``text`` (``"DEFAULT"``, ``"imagenet1k_v1"``, ``"ResNet18_Weights.IMAGENET1K_V1"``) as a registered
    weights member via torchvision's ``get_weight``; None when it names none. Weights of another architecture
    raise :class:`WeightsUnavailableError`."""
    enum_cls = _weights_enum()
    enum_name, _, member = text.rpartition(".")
    if enum_name and not enum_name.endswith("_Weights"):
        return None  # a file name such as `model.pth`
    try:
        found = get_weight(f"{enum_name or enum_cls.__name__}.{member.upper()}")
    except (ValueError, KeyError):
        return None
    if not isinstance(found, enum_cls):
        raise WeightsUnavailableError(
            f"{text} are weights of another architecture; this model is {ARCHITECTURE} "
            f"(valid names: {', '.join(_valid_names())})",
            value=text,
        )
    return found


def resolve_weights(weights: WeightsLike, *, allow_download: bool | None = None) -> ResolvedWeights:
    """Interpret ``weights`` (enum member, its name, ``"DEFAULT"``, local path, or None); nothing is loaded yet.

    Names are resolved with torchvision's own registry (``get_model_weights`` / ``get_weight``). Raises
    :class:`WeightsUnavailableError` for a name that is neither a ``ResNet18_Weights`` member nor an existing
    file, listing the valid names.
    """
    if allow_download is None:
        allow_download = os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"1", "true", "yes"}
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in {"", "none", "random"}):
        return ResolvedWeights("none")
    if isinstance(weights, ResNet18_Weights):
        return ResolvedWeights("torchvision", name=weights.name, enum=weights, allow_download=allow_download)
    if isinstance(weights, (str, os.PathLike)):
        text = os.fspath(weights).strip()
        member = _registered(text)
        if isinstance(member, ResNet18_Weights):
            return ResolvedWeights(
                "torchvision", name=member.name, enum=member, allow_download=allow_download
            )
        path = Path(text).expanduser()
        if path.is_file():
            return ResolvedWeights("file", name=path.name, path=path.resolve())
        looks_like_path = os.sep in text or "." in Path(text).name
        raise WeightsUnavailableError(
            ("weights file not found" if looks_like_path else "unknown weights name")
            + f"; valid names are {', '.join(_valid_names())} (torchvision ResNet18_Weights), a local state_dict "
            "file (.safetensors or .pth/.pt), or None for random initialisation",
            value=text,
        )
    raise WeightsUnavailableError(
        f"unsupported weights value of type {type(weights).__name__}; use one of {', '.join(_valid_names())}, "
        "a local file path, or None",
    )


def _unavailable(weights: ResNet18_Weights, cause: str) -> WeightsUnavailableError:
    target = hub_checkpoint_path(weights)
    return WeightsUnavailableError(
        f"pretrained weights ResNet18_Weights.{weights.name} are not in the local cache and could not be downloaded "
        f"({cause}). Ways out: (1) place the file {target.name} (from {weights.url}) at {target} "
        f"(set TORCH_HOME to use another cache folder); (2) pass weights=<path to a local state_dict file>; "
        "(3) use weights=None for random initialisation",
        file=target,
    )


def _torchvision_state_dict(
    weights: ResNet18_Weights,
    *,
    allow_download: bool,
    get_state_dict: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, torch.Tensor]:
    target = hub_checkpoint_path(weights)
    loader = get_state_dict or weights.get_state_dict
    if not target.is_file():
        if not allow_download:
            raise _unavailable(weights, f"downloads are disabled ({OFFLINE_ENV}=1 or allow_download=False)")
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            return loader(progress=False, check_hash=True, weights_only=True)
        except Exception as exc:
            raise _unavailable(weights, f"{type(exc).__name__}: {exc}") from None
        finally:
            socket.setdefaulttimeout(previous)
    try:
        return loader(progress=False, check_hash=True, weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cached weights file cannot be read ({type(exc).__name__}: {exc}); delete it and place a good copy of "
            f"{target.name} there, pass a local file path, or use weights=None",
            file=target,
        ) from None


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a ``state_dict`` from a safetensors file or a torch checkpoint (``weights_only=True``, no pickle code)."""
    file = Path(path)
    if not file.is_file():
        raise WeightsUnavailableError("weights file not found", file=file)
    loaded: object
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(str(file))
        else:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read weights file: {type(exc).__name__}: {exc}", file=file
        ) from None
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in loaded and isinstance(loaded[key], dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsUnavailableError("file does not hold a state_dict of tensors", file=file)
    state: dict[str, torch.Tensor] = {str(k): v for k, v in loaded.items()}
    # Checkpoints saved from DataParallel / torch.compile prefix every key.
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state
