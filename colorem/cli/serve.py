"""`colorem serve`: the web app and REST API under uvicorn, with the model loaded once before it starts."""

from __future__ import annotations

import argparse
import copy
import errno
import socket
import sys

from colorem.cli.common import add_model_arguments, load_colorizer, ranged
from colorem.limits import RENDER_SIZE
from colorem.errors import ColoremError, install_hint
from colorem.serve import Settings, create_app, default_concurrency


def register(parser: argparse.ArgumentParser) -> None:
    defaults = Settings.__dataclass_fields__
    parser.add_argument("--host", default=defaults["host"].default,
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=ranged(int, 0, 65535), default=defaults["port"].default,
                        help="TCP port (default: 8000; 0: any free port)")
    parser.add_argument("--max-upload-mb", type=ranged(float, 0.001, 1_000_000), default=defaults["max_upload_mb"].default,
                        help="largest upload accepted, in MB (default: %(default)s)")
    parser.add_argument("--max-pixels", type=ranged(int, 1), default=defaults["max_pixels"].default,
                        help="largest image accepted, in pixels (default: %(default)s)")
    parser.add_argument("--max-render-size", type=ranged(int, *RENDER_SIZE), default=defaults["max_render_size"].default,
                        help="largest render size a request may ask for (default: %(default)s)")
    parser.add_argument("--concurrency", type=ranged(int, 1), default=None,
                        help=f"photos colorized at once (default: sized to this machine, here {default_concurrency()})")
    parser.add_argument("--max-waiting", type=ranged(int, 0), default=None,
                        help="uploads held for a free slot before the server answers 503 "
                             "(default: 8 per slot); each holds at most --max-upload-mb in memory")
    parser.add_argument("--upload-timeout", type=ranged(float, 0.1), default=defaults["upload_timeout"].default, metavar="SECONDS",
                        help="time for a whole upload to arrive before the server answers 408 (default: %(default)s)")
    parser.add_argument("--max-receiving", type=ranged(int, 1), default=defaults["max_receiving"].default,
                        help="uploads arriving at once before the server answers 503 (default: %(default)s)")
    parser.add_argument("--torch-threads", type=ranged(int, 1), default=None,
                        help="intra-op threads per photo (default: torch's, usually one per core)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="log level; info (the default) logs one line per request: method, path, status, ms")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise ColoremError(f"the web server needs uvicorn: {install_hint('serve')}") from None
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    listener = bind(args.host, args.port)  # first: a busy port fails before the model is loaded
    # Loading here, not in the app's lifespan, turns missing weights into one clear error line.
    colorizer = load_colorizer(args)
    options = {key: value for key, value in (("concurrency", args.concurrency), ("max_waiting", args.max_waiting))
               if value is not None}
    try:
        settings = Settings(host=args.host, port=args.port, model=args.model, max_upload_mb=args.max_upload_mb,
                            max_pixels=args.max_pixels, max_render_size=args.max_render_size,
                            upload_timeout=args.upload_timeout, max_receiving=args.max_receiving,
                            colorizer=colorizer, **options)
    except ValueError as error:
        raise ColoremError(str(error)) from None
    app = create_app(settings)
    port = listener.getsockname()[1]
    print(f"colorem: serving {colorizer.card.name or colorizer.card.architecture} on http://{args.host}:{port}/ "
          f"({settings.concurrency} at once, {colorizer.device}, {colorizer.precision})", file=sys.stderr, flush=True)
    # colorem.serve logs one line per request (with its time); uvicorn's own access log would repeat it.
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, log_config=log_config(uvicorn, args.log_level))
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def bind(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything is announced: a busy port is one clear error line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart at once after a stop
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        hint = " (is another server running there? choose another --port)" if error.errno == errno.EADDRINUSE else ""
        raise ColoremError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    return listener


def log_config(uvicorn, level: str) -> dict:
    """uvicorn's logging setup plus the colorem.serve logger (the request lines) on its handler."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["colorem.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
