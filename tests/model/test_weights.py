"""Weight resolution: local files, torchvision names, and an actionable failure when the cache is empty offline."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import ResNet18_Weights, resnet18

from fashion_reco.errors import WeightsUnavailableError
from fashion_reco.model.network import build_resnet18, embedding_trunk
from fashion_reco.model.weights import hub_checkpoint_path, load_state_dict_file, resolve_weights


@pytest.fixture(scope="module")
def source_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    return resnet18(num_classes=1000).state_dict()


def _same_backbone(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = net.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("fc."))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_state_dict_file_loads(
    tmp_path: Path, source_state: dict[str, torch.Tensor], suffix: str
) -> None:
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": {f"module.{k}": v for k, v in source_state.items()}}, path)
    else:
        save_file({k: v.contiguous() for k, v in source_state.items()}, str(path))
    resolved = resolve_weights(str(path))
    assert resolved.kind == "file" and resolved.path == path.resolve()
    net = build_resnet18(5, weights=path)
    assert net.fc.out_features == 5
    assert _same_backbone(net, source_state)
    assert embedding_trunk(net.eval())(torch.rand(1, 3, 32, 32)).shape == (1, 512)


def test_matching_head_is_kept(tmp_path: Path) -> None:
    torch.manual_seed(1)
    tuned = resnet18(num_classes=4).state_dict()
    path = tmp_path / "tuned.pt"
    torch.save(tuned, path)
    net = build_resnet18(4, weights=path)
    assert torch.equal(net.fc.weight, tuned["fc.weight"])
    assert not torch.equal(build_resnet18(3, weights=path).fc.weight[:3], tuned["fc.weight"][:3])


def test_not_a_resnet18_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"conv1.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsUnavailableError, match="not a ResNet18 state_dict") as info:
        build_resnet18(2, weights=path)
    assert info.value.file == path.resolve()
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"nonsense")
    with pytest.raises(WeightsUnavailableError, match="cannot read weights file"):
        load_state_dict_file(garbage)


def test_bogus_name_lists_valid_names() -> None:
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights("IMAGENET_V9")
    message = str(info.value)
    assert "IMAGENET1K_V1" in message and "DEFAULT" in message and "IMAGENET_V9" in message
    with pytest.raises(WeightsUnavailableError, match="weights file not found"):
        resolve_weights("/no/such/weights.pth")
    with pytest.raises(WeightsUnavailableError, match="unsupported weights value"):
        resolve_weights(3.5)


def test_names_and_none() -> None:
    assert resolve_weights(None).kind == "none" and resolve_weights("none").state_dict() is None
    for name in (
        "DEFAULT",
        "default",
        "IMAGENET1K_V1",
        "ResNet18_Weights.IMAGENET1K_V1",
        ResNet18_Weights.DEFAULT,
    ):
        resolved = resolve_weights(name)
        assert resolved.kind == "torchvision" and resolved.name == "IMAGENET1K_V1"


def _assert_actionable(error: WeightsUnavailableError, torch_home: Path) -> None:
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    message = str(error)
    assert "resnet18-f37072fd.pth" in message and str(expected) in message
    assert "weights=None" in message and "local state_dict file" in message


def test_enum_with_empty_cache_offline_fails_without_trying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def must_not_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline mode must not try the network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", must_not_download)
    assert (
        hub_checkpoint_path(ResNet18_Weights.DEFAULT)
        == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    )
    with pytest.raises(WeightsUnavailableError) as info:
        build_resnet18(3, weights="IMAGENET1K_V1", allow_download=False)
    _assert_actionable(info.value, tmp_path)
    monkeypatch.setenv("FASHION_RECO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError):
        resolve_weights("DEFAULT").state_dict()


def test_enum_download_failure_is_actionable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url: str, dst: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(ResNet18_Weights.IMAGENET1K_V1, allow_download=True).state_dict()
    _assert_actionable(info.value, tmp_path)
    assert "URLError" in str(info.value)


def test_enum_loads_from_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_state: dict[str, torch.Tensor]
) -> None:
    """The torchvision path proper: a file placed where the message says is picked up, with no download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = hub_checkpoint_path(ResNet18_Weights.IMAGENET1K_V1)
    target.parent.mkdir(parents=True)
    torch.save(source_state, target)
    net = build_resnet18(6, weights="DEFAULT", allow_download=False)
    assert _same_backbone(net, source_state) and net.fc.out_features == 6
    target.write_bytes(b"corrupt")
    with pytest.raises(WeightsUnavailableError, match="cached weights file cannot be read"):
        build_resnet18(6, weights="DEFAULT", allow_download=False)


def test_names_go_through_torchvisions_registry() -> None:
    from torchvision.models import get_weight

    expected = get_weight("ResNet18_Weights.IMAGENET1K_V1")
    for name in ("ResNet18_Weights.imagenet1k_v1", "imagenet1k_v1", "ResNet18_Weights.DEFAULT"):
        assert resolve_weights(name).enum is expected
    with pytest.raises(WeightsUnavailableError, match="another architecture"):
        resolve_weights("ResNet50_Weights.IMAGENET1K_V2")
    assert resolve_weights("random").kind == "none"


def test_normalisation_comes_from_the_weights_transforms_unless_configured() -> None:
    """One home for mean/std: the pretrained weights' own preset, ImageNet's for random init, the config's when set."""
    from fashion_reco.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
    from fashion_reco.data.transforms import PreprocessSpec

    preset = ResNet18_Weights.IMAGENET1K_V1.transforms()
    pretrained = PreprocessSpec.from_model_config(ModelConfig(), weights=ResNet18_Weights.IMAGENET1K_V1)
    assert pretrained.mean == tuple(preset.mean) and pretrained.std == tuple(preset.std)
    random_init = PreprocessSpec.from_model_config(ModelConfig())
    assert (random_init.mean, random_init.std) == (IMAGENET_MEAN, IMAGENET_STD)
    own = ModelConfig(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    spec = PreprocessSpec.from_model_config(own, weights=ResNet18_Weights.IMAGENET1K_V1)
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.25, 0.25, 0.25)
