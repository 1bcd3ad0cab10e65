"""The ONNX backend of the Colorizer: export to ONNX, an ONNX Runtime session, int8 quantization.

Like the eager PyTorch model it takes L at the render size, (B, 1, R, R) in [0, 100], and returns ab
(B, 2, R, R) in Lab units.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from colorem.errors import install_hint

BACKENDS = ("auto", "torch", "onnxruntime")
OPSET = 18
FINGERPRINT = "colorem_weights_sha256"  # ONNX metadata: which weights the graph was exported from


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the network's weights as float32 (names and values), so an exported .onnx can be told apart
    from one exported from other weights: a .onnx left beside re-exported weights is never run in their place."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def onnx_fingerprint(path: str | os.PathLike) -> str | None:
    """The weights fingerprint an exported .onnx carries (None: none, or the onnx package is missing)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a file onnx cannot parse: it carries nothing colorem can trust
        return None
    return next((entry.value for entry in model.metadata_props if entry.key == FINGERPRINT), None)


def _with_fingerprint(model_proto, fingerprint: str):
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = FINGERPRINT, fingerprint
    return model_proto


class _ExportedColorizer(nn.Module):
    """What gets exported: L -> ab, with the annealed-mean temperature as an input for classification heads."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, l: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        if getattr(self.model, "head", "regression") == "classification":
            return self.model(l, temperature=temperature)
        return self.model(l) + 0.0 * temperature.sum()  # keeps the input in the graph for a uniform signature


class _TorchvisionNotInstalled(logging.Filter):
    """torch.onnx's exporter warns once per torchvision operator it cannot register when torchvision is
    absent (four lines per export); colorem's networks use none of them, so that is not the user's concern."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("torchvision is not installed")


@contextlib.contextmanager
def _quiet_exporter():
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    quiet = _TorchvisionNotInstalled()
    logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeFilter(quiet)


def export_onnx(model: nn.Module, path: str | os.PathLike | None = None, opset: int = OPSET) -> bytes:
    """Export with dynamic batch, height and width; returns the serialized model (and writes `path` if given)."""
    wrapper = _ExportedColorizer(model.float().eval())
    l = torch.rand(2, 1, 64, 64) * 100
    temperature = torch.tensor([float(getattr(model, "temperature", 1.0))])
    batch, height, width = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("height", min=8, max=8192), torch.export.Dim("width", min=8, max=8192)
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper, (l, temperature), dynamo=True, opset_version=opset, verbose=False,
            input_names=["l", "temperature"], output_names=["ab"],
            dynamic_shapes={"l": {0: batch, 2: height, 3: width}, "temperature": None},
        )
    data = _with_fingerprint(program.model_proto, weights_fingerprint(model)).SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"the onnxruntime backend needs onnxruntime: {install_hint('onnx')}") from error
    return onnxruntime


def onnxruntime_available() -> bool:
    try:
        _onnxruntime()
    except ImportError:
        return False
    return True


class OnnxBackend:
    """An ONNX Runtime session over an exported model (bytes or a .onnx file)."""

    def __init__(self, model_or_path: bytes | str | os.PathLike, threads: int | None = None):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        source = model_or_path if isinstance(model_or_path, bytes) else str(model_or_path)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names = {item.name for item in self.session.get_inputs()}

    def __call__(self, l_small: torch.Tensor, temperature: float) -> torch.Tensor:
        inputs = {"l": np.ascontiguousarray(l_small.float().numpy()),
                  "temperature": np.array([temperature], dtype=np.float32)}
        (ab,) = self.session.run(None, {key: value for key, value in inputs.items() if key in self.input_names})
        return torch.from_numpy(ab)


def quantize_onnx(model_bytes: bytes, path: str | os.PathLike, calibration: list[np.ndarray] | None = None) -> Path:
    """int8 quantization for CPUs without bf16: static (QDQ, calibrated on real L images) when
    calibration data is given, else dynamic. Measure its quality cost with `colorem evaluate`."""
    _onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    path = Path(path)
    source = path.with_suffix(".fp32.onnx")
    source.write_bytes(model_bytes)
    try:
        if calibration is None:
            quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8)
        else:
            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.items = iter([{"l": item.astype(np.float32), "temperature": np.array([1.0], np.float32)} for item in calibration])

                def get_next(self):
                    return next(self.items, None)

            quantize_static(str(source), str(path), Reader(), activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        import onnx

        fingerprint = next((entry.value for entry in onnx.load_from_string(model_bytes).metadata_props
                            if entry.key == FINGERPRINT), None)
        if fingerprint is not None:  # the quantized graph keeps which weights it came from
            quantized = onnx.load(str(path))
            if not any(entry.key == FINGERPRINT for entry in quantized.metadata_props):
                onnx.save(_with_fingerprint(quantized, fingerprint), str(path))
    finally:
        source.unlink(missing_ok=True)
    return path
