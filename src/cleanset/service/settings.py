"""What a service is started with; one frozen object so a test, the CLI and a bench start it the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cleanset.service.limits import Limits


@dataclass(frozen=True)
class Settings:
    banks: tuple[str, ...]  # NAME or NAME@VERSION, as ``--bank`` takes them
    limits: Limits = field(default_factory=Limits)
    keys_path: Path | None = None  # default: $CLEANSET_HOME/service/keys.json
    quality_gate: int | None = None
    access_log: bool = True  # JSON lines on the ``cleanset.access`` logger
    fast_path: bool = True  # serve /v1/check/hashes in plain ASGI (fastpath.py); False: through FastAPI
    stage_imports: bool = True  # build a new version's index on import, so its reload only swaps (live.py)
    follow_reloads: bool = False  # with several workers: load what a sibling's reload made live (live.py)
    launch: str | None = None  # one launch's id: sibling workers share version stamps under it, nobody else does
    # Plain values, not built objects: they travel to ``--workers N`` processes as JSON (``run.py``), and each
    # worker loads the models and the policy itself.
    screen: bool = False  # image checks also run the screening classifier(s), as ``cleanset scan --screen``
    classifiers: tuple[str, ...] = ()  # with ``screen``: names or model config paths; empty: the default (open_nsfw)
    policy: str | None = None  # default | strict | FILE.toml: judges every verdict the service gives (text aside)
