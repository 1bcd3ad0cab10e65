"""Reading a request safely: the upload is counted while it streams in and refused past the limit,
and the colorize options are checked before any work is done."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import AsyncIterator

import anyio
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.datastructures import UploadFile

from colorem.errors import OptionError
from colorem.limits import RENDER_SIZE, SATURATION, check_number
from colorem.hints import HintError, Hints, parse_hints_json

# Room for multipart boundaries, part headers and the small option fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024  # the largest option is `hints`: 256 hints of up to ~250 bytes of JSON each
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
                  "webp": ("WEBP", "image/webp")}
# What a number in a form field or query may look like: ASCII digits only ("1²" and "١٢" are digits to
# str.isdigit and int(), not to this), an optional sign, fraction and exponent; nan and inf are not numbers.
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
_DECIMAL = re.compile(r"[+-]?([0-9]{1,9}(\.[0-9]{0,9})?|\.[0-9]{1,9})([eE][+-]?[0-9]{1,3})?")


class ApiError(Exception):
    """An error with an HTTP status and a message meant for the person who sent the request."""

    def __init__(self, status: int, message: str, detail=None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers


@dataclass
class Upload:
    data: bytes
    filename: str
    fields: dict[str, str]
    doubled: tuple[str, ...] = ()  # form fields (the file too) given more than once: a 422 in gather_options


@dataclass
class ColorizeOptions:
    saturation: float
    render_size: int
    format: str  # "png" | "jpeg" | "webp"
    hints: Hints | None = None  # colour hints in the photo's pixels, checked

    @property
    def pillow_format(self) -> str:
        return OUTPUT_FORMATS[self.format][0]

    @property
    def media_type(self) -> str:
        return OUTPUT_FORMATS[self.format][1]


def too_large(limit_bytes: int) -> ApiError:
    return ApiError(413, f"The upload is larger than the limit of {limit_bytes / 1024 / 1024:g} MB.",
                    {"max_upload_bytes": limit_bytes})


async def _limited(stream: AsyncIterator[bytes], limit: int, file_limit: int) -> AsyncIterator[bytes]:
    """Pass the body through, stopping as soon as more than `limit` bytes have arrived."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise too_large(file_limit)
        yield chunk


async def read_upload(request: Request, max_bytes: int, timeout: float) -> Upload:
    """The `file` part of a multipart/form-data request (bytes, at most max_bytes) and its text fields; the
    whole body must arrive within `timeout` seconds (408 otherwise), so a client that trickles it cannot
    keep its connection, memory and place in the upload count for ever."""
    try:
        with anyio.fail_after(timeout):
            return await _read_upload(request, max_bytes)
    except TimeoutError:
        raise ApiError(408, f"The upload did not arrive within {timeout:g} seconds; try again on a faster connection.",
                       {"upload_timeout_s": timeout}, headers={"Connection": "close"}) from None


async def _read_upload(request: Request, max_bytes: int) -> Upload:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "Send the photo as multipart/form-data with a 'file' field.",
                       {"content_type": content_type or None})
    body_limit = max_bytes + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, "The Content-Length header is not a number.")
        if int(declared) > body_limit:
            raise too_large(max_bytes)  # refused before a single body byte is read
    parser = MultiPartParser(request.headers, _limited(request.stream(), body_limit, max_bytes),
                             max_files=2, max_fields=16, max_part_size=MAX_FIELD_BYTES)  # the photo, a hints file
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(400, "The multipart body is malformed.", str(error)) from None
    except ClientDisconnect:
        raise ApiError(400, "The client disconnected during the upload.") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "The request has no 'file' field with a photo in it.")
        if upload.size is not None and upload.size > max_bytes:
            raise too_large(max_bytes)
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(max_bytes)
        names = [key for key, _ in form.multi_items()]
        doubled = tuple(dict.fromkeys(name for name in names if names.count(name) > 1))
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        hints = form.get("hints")
        if isinstance(hints, UploadFile):  # the page's exported hints file, sent as a file (curl -F hints=@f.json)
            text = await hints.read(MAX_FIELD_BYTES + 1)
            if len(text) > MAX_FIELD_BYTES:
                raise ApiError(422, f"Invalid options: hints: the hints file is over {MAX_FIELD_BYTES // 1024} KiB",
                               [{"field": "hints", "message": f"over {MAX_FIELD_BYTES // 1024} KiB"}])
            fields["hints"] = text.decode("utf-8", errors="replace")
        return Upload(data=data, filename=upload.filename or "photo", fields=fields, doubled=doubled)
    finally:
        await form.close()


OPTIONS = ("saturation", "render_size", "format", "hints")  # hints: a form field or file only (JSON is long)


def gather_options(query_items: list[tuple[str, str]], fields: dict[str, str],
                   doubled_fields: tuple[str, ...] = ()) -> dict[str, str]:
    """The options of one request, from its query string (name, value pairs, as sent) and its form fields; a
    name colorem does not know (render-size for render_size, say), or one given twice (in both places, or twice
    in one: which was meant?) is a 422, never silently ignored."""
    names = [name for name, _ in query_items]
    query = dict(query_items)
    doubled = [*dict.fromkeys(name for name in names if names.count(name) > 1), *doubled_fields]
    problems = [{"field": name, "message": "is not an option (they are: " + ", ".join(OPTIONS) + ")"}
                for name in (*query, *fields) if name not in OPTIONS]
    problems += [{"field": name, "message": "is given more than once"} for name in doubled]
    if "hints" in query:
        problems.append({"field": "hints", "message": "goes in a form field, not the query string"})
    problems += [{"field": name, "message": "is given both in the query string and as a form field"}
                 for name in query if name in fields]
    if problems:
        raise ApiError(422, "Invalid options: " + "; ".join(f"{p['field']} {p['message']}" for p in problems),
                       problems)
    return {**query, **fields}


def parse_options(values: dict[str, str | float | int | None], default_render_size: int,
                  max_render_size: int) -> ColorizeOptions:
    """Check saturation, render_size, format and hints (from the query string or form fields, as text): each
    with one strict parser; 422 lists every problem by field name."""
    problems = []

    def number(field: str, pattern: re.Pattern, limits: tuple, default):
        raw = values.get(field)
        if raw in (None, ""):
            return default
        text = str(raw).strip()
        integer = pattern is _INTEGER
        try:
            if not pattern.fullmatch(text):
                raise OptionError(field)
            return check_number(field, int(text) if integer else float(text), limits, integer=integer)
        except OptionError:
            kind = "whole number" if integer else "number"
            problems.append({"field": field, "message": f"must be a {kind} from {limits[0]:g} to {limits[1]:g}",
                             "value": str(raw)})
            return default

    saturation = number("saturation", _DECIMAL, SATURATION, 1.0)
    render_size = number("render_size", _INTEGER, (RENDER_SIZE[0], max_render_size), default_render_size)
    image_format = "png"
    raw = values.get("format")
    if raw not in (None, ""):
        image_format = str(raw).strip().lower()
        if image_format not in OUTPUT_FORMATS:
            problems.append({"field": "format", "message": "must be png, jpeg or webp", "value": str(raw)})
        elif image_format == "jpg":
            image_format = "jpeg"
    hints = None
    raw = values.get("hints")
    if raw not in (None, ""):
        try:
            hints = parse_hints_json(str(raw))
        except HintError as error:
            problems.append({"field": "hints", "message": f"are refused ({error})", "value": str(raw)[:200]})
    if problems:
        raise ApiError(422, "Invalid options: " + "; ".join(f"{p['field']} {p['message']}" for p in problems),
                       problems)
    return ColorizeOptions(saturation=float(saturation), render_size=render_size, format=image_format, hints=hints)
