"""`colorem export SOURCE -o OUT`: a run or checkpoint to weights + JSON card; or weights to ONNX."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from colorem.cli.common import prepare_output, ranged, refuse_writing_over_inputs
from colorem.errors import OptionError
from colorem.limits import CARD_RENDER_SIZE, CAST_REMOVAL


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a training run folder (its newest good checkpoint), one checkpoint file, "
                                       "or exported .safetensors weights (to ONNX, or re-carded with new settings)")
    parser.add_argument("-o", "--output", required=True,
                        help="file to write: .safetensors (the card goes beside it as .json) or .onnx")
    parser.add_argument("--format", default=None, choices=("safetensors", "onnx"),
                        help="default: from the output's extension")
    parser.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    parser.add_argument("--no-ema", action="store_true", help="export the live weights even when the run kept an EMA")
    parser.add_argument("--name", default="", help="name in the card (default: the output file's stem)")
    parser.add_argument("--description", default="", help="description in the card")
    parser.add_argument("--render-size", type=ranged(int, *CARD_RENDER_SIZE), default=None,
                        help="default render size in the card (default: the training crop)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="classification heads: the default annealed-mean temperature in the card (default: the run's)")
    parser.add_argument("--vibrance", type=float, default=None, help="the model's calibrated colour strength in the card (default 1)")
    parser.add_argument("--cast-removal", type=ranged(float, *CAST_REMOVAL), default=None, metavar="SHARE",
                        help="the share (0-1) of each photo's mean predicted colour the card takes away before the "
                             "vibrance, against a cast over a whole photo (default 0)")
    parser.add_argument("--prior-correction", type=float, default=None, metavar="STRENGTH",
                        help="classification heads trained with rebalancing: subtract STRENGTH x log(rebalancing "
                             "weights) from the logits (1 undoes the rebalancing), folded into the output bias; "
                             "exported weights: a negative STRENGTH undoes their earlier correction (to train on)")
    parser.add_argument("--ab-prior", default=None, metavar="FILE",
                        help="with --prior-correction of exported weights: the training run's ab_prior.json "
                             "(a run or checkpoint brings its own)")
    parser.add_argument("--average-with", default=None, metavar="WEIGHTS",
                        help="average the weights with other exported raw weights of the same network (a model "
                             "soup, e.g. a continued run with the run it continued); prior-correct the mean afterwards")
    parser.add_argument("--int8", action="store_true", help="ONNX: int8-quantize (for CPUs without bf16)")
    parser.add_argument("--calibration", default=None,
                        help="ONNX --int8: a folder of photos for static quantization (default: dynamic quantization)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    output = Path(args.output)
    export_format = args.format or output.suffix.lstrip(".")
    if output.suffix not in (".safetensors", ".onnx") or export_format != output.suffix.lstrip("."):
        raise OptionError(f"-o {output}: write a .safetensors (weights + card) or a .onnx file"
                          + (f", as --format {args.format} says" if args.format else ""))
    if export_format == "onnx":
        card_options = [flag for flag, value in (
            ("--fp16", args.fp16), ("--name", args.name), ("--description", args.description),
            ("--render-size", args.render_size), ("--temperature", args.temperature), ("--vibrance", args.vibrance),
            ("--cast-removal", args.cast_removal), ("--prior-correction", args.prior_correction),
            ("--ab-prior", args.ab_prior), ("--average-with", args.average_with)) if value not in (None, False, "")]
        if card_options:  # once silently ignored: the .onnx ran without the correction the user asked for
            raise OptionError(f"{', '.join(card_options)}: a .onnx holds the network as it is; export a .safetensors "
                              f"with these first, then its .onnx (colorem export {output.with_suffix('.safetensors')} "
                              f"-o {output})")
    elif args.int8 or args.calibration:
        raise OptionError("--int8 and --calibration quantize a .onnx output; -o names a .safetensors")
    source = Path(args.source)
    check_source(source)
    # weights re-carded in place would be read and replaced at once: refused, as colorize refuses its input (a .onnx
    # writes no card: W.onnx beside W.safetensors and its card is where it belongs)
    written = [(source, output)] + ([] if export_format == "onnx" else [(source.with_suffix(".json"), output.with_suffix(".json"))])
    refuse_writing_over_inputs(written, output)
    prepare_output(output, single_file=True)  # an unwritable folder: one line, exit 2, before the run is read
    if export_format == "onnx":
        return _export_onnx(args, output)
    from colorem.train.export import export

    path = export(args.source, output, dtype=torch.float16 if args.fp16 else None, use_ema=not args.no_ema,
                  name=args.name, description=args.description, render_size=args.render_size,
                  vibrance=args.vibrance, cast_removal=args.cast_removal, temperature=args.temperature,
                  prior_correction=args.prior_correction, ab_prior=args.ab_prior, average_with=args.average_with)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def check_source(source: Path) -> None:
    """A file given as SOURCE is exported weights (.safetensors, or its .json card) or a checkpoint, which
    torch.save writes as a zip archive holding data.pkl; anything else is named for what it is not here, before
    torch reads it."""
    if not source.is_file() or source.suffix in (".safetensors", ".json"):
        return  # a run folder, or a missing path: the export says which
    try:
        with zipfile.ZipFile(source) as archive:
            if any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()):
                return
    except (zipfile.BadZipFile, OSError):
        pass
    raise OptionError(f"{source} is not a training run folder, a checkpoint (.pt, a PyTorch archive) or exported "
                      ".safetensors weights")


def _export_onnx(args: argparse.Namespace, output: Path) -> int:
    from colorem.onnx_backend import export_onnx, quantize_onnx
    from colorem.weights import load_weights

    source = Path(args.source)
    if source.suffix == ".safetensors" or source.suffix == ".json":
        model, card = load_weights(source)
    else:
        from colorem.train.export import load_trained_model

        model, card = load_trained_model(source, use_ema=not args.no_ema)
    data = export_onnx(model, None if args.int8 else output)
    if args.int8:
        calibration = _calibration_batches(args.calibration, card.render_size) if args.calibration else None
        quantize_onnx(data, output, calibration)
    print(f"wrote {output} (opset 18, dynamic batch/height/width{', int8' if args.int8 else ''})")
    return 0


def _calibration_batches(folder: str, render_size: int) -> list:
    """L at the render size for up to 64 photos of the folder, as colorize prepares it: one array (1, 1, R, R) each."""
    from colorem.colorize import prepare_photo
    from colorem.imageio import IMAGE_EXTENSIONS, read_image

    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:64]
    return [prepare_photo(read_image(path), render_size).l_small.numpy() for path in paths]
