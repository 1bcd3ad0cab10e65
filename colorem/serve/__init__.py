"""The web app and REST API: `create_app(Settings(...))` builds a FastAPI app over one shared Colorizer.

FastAPI is an optional dependency (the `serve` extra); importing Settings does not need it.
"""

from __future__ import annotations

from colorem.errors import ColoremError, install_hint
from colorem.serve.settings import Settings, default_concurrency, packaged_samples

SERVE_PACKAGES = ("fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "anyio", "pydantic",
                  "swagger_ui_bundle")


def create_app(settings: Settings | None = None):
    """The FastAPI application for `settings` (defaults: the packaged model on 127.0.0.1:8000)."""
    try:
        from colorem.serve.app import create_app as build
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in SERVE_PACKAGES:
            raise ColoremError(
                f"the web server needs {error.name}, which is not installed: {install_hint('serve')}"
            ) from None
        raise
    return build(settings)


__all__ = ["Settings", "create_app", "default_concurrency", "packaged_samples"]
