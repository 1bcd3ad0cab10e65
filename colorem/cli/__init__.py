"""The `colorem` command: thin subcommands over the library. Only this layer prints and exits."""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import threading

from colorem import __version__
from colorem.errors import ColoremError, install_hint

# The optional packages a subcommand may import and the extra that installs each (pyproject.toml).
EXTRAS = {"onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx", "webdataset": "train", "braceexpand": "train",
          "tensorboard": "train", "av": "video", "fastapi": "serve", "starlette": "serve", "uvicorn": "serve",
          "multipart": "serve", "python_multipart": "serve", "swagger_ui_bundle": "serve", "timm": "timm"}

# Each subcommand lives in colorem/cli/<module>.py with register(subparsers); imported lazily so
# `colorem colorize` does not pay for the server or trainer imports.
SUBCOMMANDS = {
    "colorize": ("colorize", "colorize photos, folders or globs"),
    "video": ("video", "colorize video files with colours stable over time (needs the video extra)"),
    "models": ("models", "list registered architectures and installed weights"),
    "train": ("train", "train a colorizer on your photos"),
    "export": ("export", "export a training run or checkpoint to weights + card"),
    "evaluate": ("evaluate", "score models on a folder of colour photos"),
    "serve": ("serve", "run the web app and REST API"),
}


class Parser(argparse.ArgumentParser):
    """argparse with every usage error on one line of stderr (exit 2); the usage is one --help away."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(
        prog="colorem",
        description="Colorize black-and-white photos with a neural network you can train yourself.",
    )
    parser.add_argument("--version", action="version", version=f"colorem {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if wanted == name:
            module = importlib.import_module(f"colorem.cli.{module_name}")
            module.register(subparsers.add_parser(name, help=help_text, description=help_text))
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    # SIGTERM (`timeout`, `kill`, a scheduler) unwinds like Ctrl-C, so temporary files are removed on the way out
    # (training and the server install their own handlers, which save or drain first).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except ColoremError as error:
        print(f"colorem: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        missing = missing_package(error)
        if missing is None:
            raise
        print(f"colorem: error: colorem {args.command} needs {missing}, which is not installed: "
              f"{install_hint(EXTRAS[missing])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print("terminated" if isinstance(interrupt, Terminated) else "interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


NEGATIVE_VALUE = re.compile(r"-[0-9.][^=]*")  # "-1,5,red": argparse takes it for an option, "expected one argument"


def join_negative_values(argv: list[str]) -> list[str]:
    """`--hint -1,5,red` as `--hint=-1,5,red`, so a hint's negative coordinate reaches the hint check, which says
    what is wrong with it."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--hint" and NEGATIVE_VALUE.fullmatch(arg):
            joined[-1] = f"--hint={arg}"
        else:
            joined.append(arg)
    return joined


def missing_package(error: BaseException | None) -> str | None:
    """The optional package whose absence caused `error` (looked for along its causes, since colorem wraps some
    ImportErrors in its own), when an extra installs it; else None: a real bug keeps its traceback."""
    while error is not None:
        name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
        if name and name.split(".")[0] in EXTRAS:
            return name.split(".")[0]
        error = error.__cause__ or error.__context__
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt."""


def _terminate(signum, frame):
    raise Terminated
