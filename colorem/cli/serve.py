"""`colorem serve`: the web app and REST API under uvicorn, with the model loaded once before it starts."""

from __future__ import annotations

import argparse
import sys

from colorem.cli.common import add_model_arguments, load_colorizer
from colorem.errors import ColoremError
from colorem.serve import Settings, create_app, default_concurrency


def register(parser: argparse.ArgumentParser) -> None:
    defaults = Settings.__dataclass_fields__
    parser.add_argument("--host", default=defaults["host"].default,
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=int, default=defaults["port"].default, help="TCP port (default: 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=defaults["max_upload_mb"].default,
                        help="largest upload accepted, in MB (default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=defaults["max_pixels"].default,
                        help="largest image accepted, in pixels (default: %(default)s)")
    parser.add_argument("--max-render-size", type=int, default=defaults["max_render_size"].default,
                        help="largest render size a request may ask for (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help=f"photos colorized at once (default: sized to this machine, here {default_concurrency()})")
    parser.add_argument("--max-waiting", type=int, default=None,
                        help="uploads held for a free slot before the server answers 503 "
                             "(default: 8 per slot); each holds at most --max-upload-mb in memory")
    parser.add_argument("--upload-timeout", type=float, default=defaults["upload_timeout"].default, metavar="SECONDS",
                        help="time for a whole upload to arrive before the server answers 408 (default: %(default)s)")
    parser.add_argument("--max-receiving", type=int, default=defaults["max_receiving"].default,
                        help="uploads arriving at once before the server answers 503 (default: %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="intra-op threads per photo (default: torch's, usually one per core)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn log level")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise ColoremError('the web server needs uvicorn: pip install "color-em[serve]"') from None
    if args.concurrency is not None and args.concurrency < 1:
        raise ColoremError("--concurrency must be at least 1")
    if args.max_waiting is not None and args.max_waiting < 0:
        raise ColoremError("--max-waiting must be 0 or more")
    if args.torch_threads is not None:
        if args.torch_threads < 1:
            raise ColoremError("--torch-threads must be at least 1")
        import torch

        torch.set_num_threads(args.torch_threads)
    # Loading here, not in the app's lifespan, turns missing weights into one clear error line.
    colorizer = load_colorizer(args)
    colorizer.max_pixels = args.max_pixels
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
    print(f"colorem: serving {colorizer.card.name or colorizer.card.architecture} on http://{args.host}:{args.port}/ "
          f"({settings.concurrency} at once, {colorizer.device}, {colorizer.precision})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.log_level == "debug")
    return 0
