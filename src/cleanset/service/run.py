"""Running the app: uvicorn with uvloop and httptools (measured faster than the pure-Python parts), the access
log on stderr as JSON lines, and ``--workers N`` as N processes that each load the banks (settings travel to them
in an environment variable, since uvicorn starts workers from an import string)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from cleanset.service.app import create_app
from cleanset.service.limits import Limits
from cleanset.service.live import server_allocator, steady_heap
from cleanset.service.settings import Settings

SETTINGS_ENV = "CLEANSET_SERVICE_SETTINGS"


def _to_env(settings: Settings) -> str:
    d = asdict(settings)
    d["keys_path"] = None if settings.keys_path is None else str(settings.keys_path)
    return json.dumps(d)


def settings_from_env() -> Settings:
    """The settings the supervisor wrote for its workers: every field, so a field added to ``Settings`` travels too."""
    d: dict[str, Any] = json.loads(os.environ[SETTINGS_ENV])
    keys = d.get("keys_path")
    return Settings(
        **{
            **d,
            "banks": tuple(d["banks"]),
            "classifiers": tuple(d.get("classifiers") or ()),
            "limits": Limits(**d["limits"]),
            "keys_path": None if keys is None else Path(keys),
        }
    )


def app_from_env() -> FastAPI:
    """The factory each worker process calls (a fresh interpreter: it sets up its own log)."""
    settings = settings_from_env()
    access_logging(settings.access_log)
    server_allocator()
    app = create_app(settings)
    steady_heap()  # after the banks are loaded and the kernels warmed up: that heap is what stays
    return app


def access_logging(enabled: bool) -> None:
    log = logging.getLogger("cleanset.access")
    log.propagate = False
    log.setLevel(logging.INFO if enabled else logging.WARNING)
    if enabled and not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(h)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Blocks until stopped (Ctrl-C or SIGTERM: uvicorn finishes requests in flight first)."""
    import uvicorn

    from cleanset.threads import limit_blas_threads

    limit_blas_threads()
    access_logging(settings.access_log)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,  # ours is structured and has no query strings; uvicorn's would duplicate it
        "log_level": "warning",
    }
    if workers > 1:
        # A fresh launch id: the workers of this launch follow each other's reloads, never a stamp an earlier
        # run (or another service on this CLEANSET_HOME) left behind.
        launch = secrets.token_hex(8)
        os.environ[SETTINGS_ENV] = _to_env(replace(settings, follow_reloads=True, launch=launch))
        uvicorn.run("cleanset.service.run:app_from_env", factory=True, workers=workers, **common)
    else:
        server_allocator()
        app = create_app(settings)
        steady_heap()
        uvicorn.run(app, **common)
