"""The FastAPI app: the model is loaded once in the lifespan, photos run off the event loop through a
bounded number of slots, and every failure reaches the client as JSON {"error", "detail"}."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict
from functools import partial
from importlib import resources
from urllib.parse import quote
import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from colorem import __version__
from colorem.errors import ImageReadError, ImageTooLargeError, ModelOutputError, UnsupportedFormatError
from colorem.hints import MAX_HINTS, HintError
from colorem.imageio import READ_FORMAT_NAMES, encode_image, read_image
from colorem.limits import RENDER_SIZE, SATURATION
from colorem.models import list_models
from colorem.serve.gate import AccessLog, Gate
from colorem.serve.samples import load_samples
from colorem.serve.settings import Settings
from colorem.serve.uploads import (
    ApiError,
    ColorizeOptions,
    gather_options,
    parse_options,
    read_upload,
)

# The page loads only its own files; blob: is where the uploaded and colorized images live.
PAGE_SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class PageFiles(StaticFiles):
    """The page's own files under /static, with the page's security headers (index.html is there too)."""

    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_SECURITY)
        return response


class ErrorBody(BaseModel):
    error: str
    detail: object | None = None


def _load_colorizer(settings: Settings):
    from colorem.colorize import load

    return load(settings.model, device=settings.device, precision=settings.precision, max_pixels=settings.max_pixels)


def _warm_up(colorizer) -> None:
    """One small photo through the model so kernels are chosen before the first user arrives."""
    gray = np.full((64, 64), 128, dtype=np.uint8)
    colorizer.colorize(gray)


def _colorize_bytes(colorizer, data: bytes, name: str, options: ColorizeOptions, max_pixels: int):
    """Runs in a worker thread: decode -> colorize -> encode. Returns (encoded bytes, (width, height))."""
    photo = read_image(data, max_pixels=max_pixels, name=name)
    try:
        image = colorizer.colorize(photo, options.render_size, options.saturation, hints=options.hints)
    except HintError as error:  # a hint outside this photo, or hints for a model without a hint input
        raise ApiError(422, f"Invalid options: hints: {error}", [{"field": "hints", "message": str(error)}]) from None
    return encode_image(image, options.pillow_format), photo.size


def _content_disposition(filename: str, image_format: str) -> str:
    """The download's name: the upload's stem + "-colorized" + the format's extension, as ASCII in `filename`
    and, when the stem has other characters (e.g. "祖母.jpg"), whole in RFC 6266's `filename*`, which browsers
    prefer; never a path, quotes or control characters."""
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    suffix = f"-colorized.{'jpg' if image_format == 'jpeg' else image_format}"
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "photo"
    header = f'attachment; filename="{ascii_stem}{suffix}"'
    full_stem = re.sub(r'[\x00-\x1f\x7f"]+', "_", stem).strip(" .")[:80]
    if full_stem and not full_stem.isascii():
        header += f"; filename*=UTF-8''{quote(full_stem + suffix, safe='')}"
    return header


def _status_for(error: ImageReadError) -> tuple[int, str]:
    if isinstance(error, ImageTooLargeError):
        what = "has too many pixels" if "pixels" in error.reason else "would take too much work to decode"
        return 413, f"The image {what}: {error.reason}."
    if isinstance(error, UnsupportedFormatError):
        return 415, f"That file is not an image colorem can read (use {READ_FORMAT_NAMES})."
    if error.reason == "the data is empty":
        return 422, "The file is empty."
    return 422, "The image is corrupt or truncated."


def _error(status: int, message: str, detail=None, headers=None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": jsonable_encoder(detail)}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return _error(error.status, error.message, error.detail, error.headers)

    @app.exception_handler(ImageReadError)
    async def image_error(request: Request, error: ImageReadError):
        status, message = _status_for(error)
        return _error(status, message, error.reason)

    @app.exception_handler(MemoryError)  # NotEnoughMemoryError from colorizing, or a plain one from encoding
    async def memory_error(request: Request, error: MemoryError):
        return _error(503, "The server does not have enough memory for this photo now; try again later or send a "
                           "smaller one.", getattr(error, "reason", "not enough memory"), {"Retry-After": "10"})

    @app.exception_handler(ModelOutputError)
    async def model_error(request: Request, error: ModelOutputError):
        # The server's weights are at fault, not the photo: a 500 that says so (the details go to the log).
        return _error(500, "The model produced no usable colours for this photo.", "ModelOutputError")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = [{"field": ".".join(str(part) for part in item.get("loc", ())[1:]), "message": item.get("msg")}
                    for item in error.errors()]
        return _error(422, "Invalid options: " + "; ".join(f"{p['field']} {p['message']}" for p in problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        messages = {404: "Not found.", 405: "Method not allowed."}
        message = error.detail if isinstance(error.detail, str) and error.status_code not in messages else \
            messages.get(error.status_code, "Request failed.")
        return _error(error.status_code, message, None, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        # The traceback goes to the server log (uvicorn prints it); the client only learns that it failed.
        return _error(500, "Internal server error.", type(error).__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model is loaded (or the injected one taken) when the app starts."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        colorizer = settings.colorizer
        if colorizer is None:
            colorizer = await anyio.to_thread.run_sync(_load_colorizer, settings)
        if settings.warmup:
            await anyio.to_thread.run_sync(_warm_up, colorizer)
        app.state.colorizer = colorizer
        form_schema["properties"]["render_size"]["default"] = colorizer.render_size  # "Try it out" starts there
        app.state.samples = load_samples(settings.samples_dir)
        app.state.gate = Gate(settings.concurrency, settings.max_waiting, settings.max_receiving)
        app.state.page = (resources.files("colorem.serve") / "static" / "index.html").read_text(encoding="utf-8")
        yield

    app = FastAPI(
        title="colorem",
        version=__version__,
        description="Colorize black-and-white photos. Upload a photo to `POST /api/colorize` and get the "
                    "colorized image back; the page at `/` does the same in a browser.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's /docs and /redoc load their scripts from a CDN; ours come from the package
        redoc_url=None,
        redirect_slashes=False,  # /healthz/ is a JSON 404 like any unknown path, not a bare redirect
    )
    app.state.settings = settings
    app.add_middleware(AccessLog)
    _install_error_handlers(app)
    errors = {code: {"model": ErrorBody, "description": text} for code, text in {
        400: "malformed request", 413: "upload or image too large", 415: "not an image",
        408: "upload too slow", 422: "corrupt image or invalid options",
        503: "too many photos waiting or uploading, or not enough memory"}.items()}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request):
        return HTMLResponse(request.app.state.page, headers=PAGE_SECURITY)

    @app.get("/healthz", summary="Liveness and load")
    async def healthz(request: Request):
        gate: Gate = request.app.state.gate
        return {"status": "ok", "running": gate.running, "waiting": gate.waiting, "receiving": gate.receiving,
                "concurrency": gate.concurrency, "served": gate.served, "dropped": gate.dropped}

    @app.get("/api/config", summary="Limits and defaults the page uses")
    async def config(request: Request):
        colorizer = request.app.state.colorizer
        return {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "render_size": colorizer.render_size,
            "render_size_range": [RENDER_SIZE[0], settings.max_render_size],
            "saturation_range": list(SATURATION),
            "formats": ["png", "jpeg", "webp"],
            "accepts_hints": colorizer.accepts_hints,  # the page shows its hint tools only then
            "max_hints": MAX_HINTS,
        }

    @app.get("/api/models", summary="The loaded model and the registered architectures")
    async def models(request: Request):
        colorizer = request.app.state.colorizer
        card = asdict(colorizer.card)
        card.pop("format", None)
        return {
            "loaded": {**card, "device": str(colorizer.device), "precision": colorizer.precision,
                       "parameters": colorizer.parameters},
            "architectures": list_models(),
        }

    @app.get("/api/samples", summary="Sample photos to try")
    async def samples(request: Request):
        return {"samples": [sample.public() for sample in request.app.state.samples.values()]}

    sample_responses = {200: {"content": {"image/jpeg": {}}, "description": "the photo"},
                        400: {"model": ErrorBody, "description": "invalid name"},
                        404: {"model": ErrorBody, "description": "no such sample"}}

    def sample_endpoint(original: bool):
        async def sample(request: Request, name: str) -> Response:
            """A sample photo (black and white), or its colour original."""
            if "/" in name or "\\" in name or ".." in name or name.startswith("~"):
                raise ApiError(400, "Invalid sample name.", name)
            found = request.app.state.samples.get(name)
            if found is None:
                raise ApiError(404, f"There is no sample named {name!r}.", sorted(request.app.state.samples))
            resource = found.original if original else found.resource
            if resource is None:
                raise ApiError(404, f"The sample {name!r} has no colour original.")
            data = await anyio.to_thread.run_sync(resource.read_bytes)
            return Response(data, media_type=found.media_type, headers={"Cache-Control": "public, max-age=3600"})
        return sample

    sample, sample_original = sample_endpoint(original=False), sample_endpoint(original=True)
    for path, endpoint, summary in (("/api/samples/{name}", sample, "A sample photo (black and white)"),
                                    ("/api/samples/{name}/original", sample_original, "The colour original of a sample photo")):
        app.add_api_route(path, endpoint, methods=["GET"], summary=summary, response_class=Response, responses=sample_responses)

    # HEAD answers like GET without the body (uvicorn drops it); one operation each in the API docs.
    for path, endpoint in (("/", page), ("/healthz", healthz), ("/api/config", config),
                           ("/api/samples/{name}", sample), ("/api/samples/{name}/original", sample_original)):
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    form_schema = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": f"the photo ({READ_FORMAT_NAMES})"},
            "saturation": {"type": "number", "minimum": SATURATION[0], "maximum": SATURATION[1], "default": 1.0},
            "render_size": {"type": "integer", "minimum": RENDER_SIZE[0], "maximum": settings.max_render_size,
                            "description": "default: the model's (GET /api/config)"},
            "format": {"type": "string", "enum": ["png", "jpeg", "webp"], "default": "png"},
            "hints": {"type": "string", "description": 'colour hints for a model with a hint input (GET /api/config: '
                      'accepts_hints), JSON: [{"x": 120, "y": 80, "color": "#3a6ea5"}, ...] in the photo\'s pixels',
                      "example": "[]"},
        },
    }

    @app.post(
        "/api/colorize",
        summary="Colorize a photo",
        description="Send the photo as multipart/form-data field `file`. Options may be form fields or query "
                    "parameters; `hints` (colour hints, JSON) is a form field. Returns the colorized image at the input's size.",
        response_class=Response,
        responses={200: {"content": {media: {} for media in ("image/png", "image/jpeg", "image/webp")},
                         "description": "the colorized image"}, **errors},
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form_schema}}}},
    )
    async def colorize(
        request: Request,
        # Declared for the API docs; read with the form fields by gather_options and checked as text by
        # parse_options: one strict parser for both.
        saturation: str | None = Query(None, description="scale the predicted colour: 0 gray, 1 as predicted "
                                       f"({SATURATION[0]:g} to {SATURATION[1]:g})"),
        render_size: str | None = Query(None, description="side of the square the network sees (default: the "
                                        f"model's; {RENDER_SIZE[0]} to {settings.max_render_size})"),
        format: str | None = Query(None, description="output image format: png, jpeg or webp"),
    ):
        state = request.app.state
        gate: Gate = state.gate
        with gate.receive():
            upload = await read_upload(request, settings.max_upload_bytes, settings.upload_timeout)
        with gate.admit():
            # Asking once resumes reading the connection (uvicorn pauses it once a body is complete), so a client
            # that leaves while its photo waits is seen when the slot comes (Gate.slot).
            await request.is_disconnected()
            values = gather_options(request.query_params.multi_items(), upload.fields, upload.doubled)
            options = parse_options(values, state.colorizer.render_size, settings.max_render_size)
            async with gate.slot(request):
                started = time.perf_counter()
                data, (width, height) = await anyio.to_thread.run_sync(partial(
                    _colorize_bytes, state.colorizer, upload.data, upload.filename, options, settings.max_pixels))
                elapsed_ms = (time.perf_counter() - started) * 1000
        return Response(data, media_type=options.media_type, headers={
            "Content-Disposition": _content_disposition(upload.filename, options.format),
            "X-Image-Size": f"{width}x{height}",
            "Server-Timing": f"colorize;dur={elapsed_ms:.1f}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        })

    app.mount("/static", PageFiles(packages=[("colorem.serve", "static")]), name="static")
    _install_docs(app)
    return app


def _install_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from the swagger-ui-bundle package, so the API docs work offline like the page."""
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=root + app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png")
