"""The HTTP service: FastAPI over the Python API, with keys, limits, metrics and live banks (docs/service.md)."""

from __future__ import annotations

from cleanset.service.app import create_app
from cleanset.service.settings import Settings

__all__ = ["Settings", "create_app"]
