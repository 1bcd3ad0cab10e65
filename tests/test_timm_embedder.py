"""The original's Inception-ResNet-v2 embedder (timm): local weights in, a 1000-d softmax out.

Runs where timm imports (CI runs it in a second virtual environment with torch + torchvision).
"""

import os

import pytest
import torch

timm = pytest.importorskip("timm")
pytestmark = pytest.mark.timm

from safetensors.torch import save_file  # noqa: E402

from colorem.errors import WeightsError  # noqa: E402
from colorem.models import create_model  # noqa: E402
from colorem.models.embedders import InceptionResNetV2Embedder  # noqa: E402
from colorem.weights import ModelCard, load_weights, save_weights  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory):
    """Random-initialized Inception-ResNet-v2 weights written the two ways users get them."""
    torch.manual_seed(0)
    net = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1000)
    state = {key: value.contiguous() for key, value in net.state_dict().items()}
    folder = tmp_path_factory.mktemp("irv2")
    save_file(state, str(folder / "irv2.safetensors"))
    torch.save(state, folder / "irv2.pth")
    return folder, state


@pytest.mark.parametrize("name", ["irv2.safetensors", "irv2.pth"])
def test_loads_local_file_and_embeds(local_weights, name):
    folder, state = local_weights
    embedder = InceptionResNetV2Embedder(weights=folder / name)
    loaded = embedder.net.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
    assert embedder.frozen and not any(p.requires_grad for p in embedder.parameters())
    assert InceptionResNetV2Embedder.external  # its weights stay in their own file, never copied into ours
    embedding = embedder(torch.rand(2, 1, 70, 90) * 100)
    assert embedding.shape == (2, 1000)
    assert torch.allclose(embedding.sum(dim=1), torch.ones(2), atol=1e-4)


def test_refuses_to_download_or_unpickle(tmp_path):
    with pytest.raises(WeightsError, match="local weights"):
        InceptionResNetV2Embedder()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="refusing"):
        InceptionResNetV2Embedder(weights=tmp_path / "evil.pth")


def test_original_network_with_irv2_round_trips_without_copying_the_embedder(local_weights, tmp_path):
    folder, _ = local_weights
    options = {"embedder": "inception_resnet_v2"}
    model = create_model("color-em-original", embedder_options={"weights": str(folder / "irv2.safetensors")}, **options)
    count = sum(p.numel() for key, p in model.named_parameters() if not key.startswith("embedder."))
    assert count == 6_541_202
    path = save_weights(model, ModelCard(architecture="color-em-original", architecture_options=options), tmp_path / "w.safetensors")
    assert path.stat().st_size < 30e6  # the 55M-parameter classifier stays in its own file
    loaded, _ = load_weights(path, embedder_options={"weights": str(folder / "irv2.safetensors")})
    l = torch.rand(1, 1, 48, 40) * 100
    with torch.no_grad():
        assert torch.allclose(model.eval()(l), loaded(l), atol=1e-5)
