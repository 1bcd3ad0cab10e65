"""The FastAPI app: the model is loaded once in the lifespan, photos run off the event loop through a
bounded number of slots, and every failure reaches the client as JSON {"error", "detail"}."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict
from functools import partial
from importlib import resources
from typing import Literal

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from colorem import __version__
from colorem.errors import ImageReadError, ImageTooLargeError
from colorem.hints import MAX_HINTS, HintError
from colorem.imageio import encode_image, read_image
from colorem.models import list_models
from colorem.serve.samples import load_samples
from colorem.serve.settings import Settings
from colorem.serve.uploads import (
    MIN_RENDER_SIZE,
    SATURATION_RANGE,
    ApiError,
    ColorizeOptions,
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


class ErrorBody(BaseModel):
    error: str
    detail: object | None = None


class Gate:
    """At most `concurrency` photos run at once and `max_waiting` more may wait for a slot; beyond that
    a request is refused with 503 before its body is read, so a burst cannot exhaust memory."""

    def __init__(self, concurrency: int, max_waiting: int):
        self.concurrency = concurrency
        self.limit = concurrency + max_waiting
        self.semaphore = anyio.Semaphore(concurrency)
        self.in_flight = 0
        self.running = 0
        self.served = 0

    @contextlib.contextmanager
    def admit(self):
        if self.in_flight >= self.limit:
            raise ApiError(503, "The server is busy colorizing other photos; try again in a moment.",
                           {"in_flight": self.in_flight}, headers={"Retry-After": "2"})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self):
        async with self.semaphore:
            self.running += 1
            try:
                yield
            finally:
                self.running -= 1
                self.served += 1


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


def _download_name(filename: str, image_format: str) -> str:
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "photo"
    return f"{stem}-colorized.{'jpg' if image_format == 'jpeg' else image_format}"


def _status_for(error: ImageReadError) -> tuple[int, str]:
    if isinstance(error, ImageTooLargeError):
        return 413, "The image has too many pixels."
    if error.reason == "not a recognised image format":
        return 415, "That file is not an image colorem can read (use JPEG, PNG, WebP, BMP, TIFF or GIF)."
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
        app.state.samples = load_samples(settings.samples_dir)
        app.state.gate = Gate(settings.concurrency, settings.max_waiting)
        app.state.page = (resources.files("colorem.serve") / "static" / "index.html").read_text(encoding="utf-8")
        yield

    app = FastAPI(
        title="colorem",
        version=__version__,
        description="Colorize black-and-white photos. Upload a photo to `POST /api/colorize` and get the "
                    "colorized image back; the page at `/` does the same in a browser.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    _install_error_handlers(app)
    errors = {code: {"model": ErrorBody, "description": text} for code, text in {
        400: "malformed request", 413: "upload or image too large", 415: "not an image",
        422: "corrupt image or invalid options", 503: "too many photos waiting"}.items()}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request):
        return HTMLResponse(request.app.state.page, headers=PAGE_SECURITY)

    @app.get("/healthz", summary="Liveness and load")
    async def healthz(request: Request):
        gate: Gate = request.app.state.gate
        return {"status": "ok", "running": gate.running, "waiting": max(0, gate.in_flight - gate.running),
                "concurrency": gate.concurrency, "served": gate.served}

    @app.get("/api/config", summary="Limits and defaults the page uses")
    async def config(request: Request):
        colorizer = request.app.state.colorizer
        return {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "render_size": colorizer.render_size,
            "render_size_range": [MIN_RENDER_SIZE, settings.max_render_size],
            "saturation_range": list(SATURATION_RANGE),
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
                       "parameters": sum(p.numel() for p in colorizer.model.parameters())},
            "architectures": list_models(),
        }

    @app.get("/api/samples", summary="Sample photos to try")
    async def samples(request: Request):
        return {"samples": [sample.public() for sample in request.app.state.samples.values()]}

    sample_responses = {200: {"content": {"image/jpeg": {}}, "description": "the photo"},
                        400: {"model": ErrorBody, "description": "invalid name"},
                        404: {"model": ErrorBody, "description": "no such sample"}}

    def find_sample(request: Request, name: str):
        if "/" in name or "\\" in name or ".." in name or name.startswith("~"):
            raise ApiError(400, "Invalid sample name.", name)
        sample = request.app.state.samples.get(name)
        if sample is None:
            raise ApiError(404, f"There is no sample named {name!r}.", sorted(request.app.state.samples))
        return sample

    @app.get("/api/samples/{name}", summary="A sample photo (black and white)",
             response_class=Response, responses=sample_responses)
    async def sample(request: Request, name: str):
        found = find_sample(request, name)
        data = await anyio.to_thread.run_sync(found.resource.read_bytes)
        return Response(data, media_type=found.media_type, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/api/samples/{name}/original", summary="The colour original of a sample photo",
             response_class=Response, responses=sample_responses)
    async def sample_original(request: Request, name: str):
        found = find_sample(request, name)
        if found.original is None:
            raise ApiError(404, f"The sample {name!r} has no colour original.")
        data = await anyio.to_thread.run_sync(found.original.read_bytes)
        return Response(data, media_type=found.media_type, headers={"Cache-Control": "public, max-age=3600"})

    form_schema = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the photo (JPEG, PNG, WebP, BMP, TIFF, GIF)"},
            "saturation": {"type": "number", "minimum": SATURATION_RANGE[0], "maximum": SATURATION_RANGE[1], "default": 1.0},
            "render_size": {"type": "integer", "minimum": MIN_RENDER_SIZE, "maximum": settings.max_render_size},
            "format": {"type": "string", "enum": ["png", "jpeg", "webp"], "default": "png"},
            "hints": {"type": "string", "description": 'colour hints for a model with a hint input (GET /api/config: '
                      'accepts_hints), JSON: [{"x": 120, "y": 80, "color": "#3a6ea5"}, ...] in the photo\'s pixels'},
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
        saturation: float | None = Query(None, ge=SATURATION_RANGE[0], le=SATURATION_RANGE[1],
                                         description="scale the predicted colour: 0 gray, 1 as predicted"),
        render_size: int | None = Query(None, ge=MIN_RENDER_SIZE, le=settings.max_render_size,
                                        description="side of the square the network sees (default: the model's)"),
        format: Literal["png", "jpeg", "jpg", "webp"] | None = Query(None, description="output image format"),
    ):
        state = request.app.state
        gate: Gate = state.gate
        with gate.admit():
            upload = await read_upload(request, settings.max_upload_bytes)
            values = {"saturation": saturation, "render_size": render_size, "format": format, "hints": None}
            values.update({key: value for key, value in upload.fields.items() if key in values})
            options = parse_options(values, state.colorizer.render_size, settings.max_render_size)
            async with gate.slot():
                started = time.perf_counter()
                data, (width, height) = await anyio.to_thread.run_sync(partial(
                    _colorize_bytes, state.colorizer, upload.data, upload.filename, options, settings.max_pixels))
                elapsed_ms = (time.perf_counter() - started) * 1000
        filename = _download_name(upload.filename, options.format)
        return Response(data, media_type=options.media_type, headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Image-Size": f"{width}x{height}",
            "Server-Timing": f"colorize;dur={elapsed_ms:.1f}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        })

    app.mount("/static", StaticFiles(packages=[("colorem.serve", "static")]), name="static")
    return app
