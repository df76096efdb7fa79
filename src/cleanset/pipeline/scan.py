"""A whole scan: configuration checks first, then shards through an executor, then the summary.

Everything that can be wrong with the command (unknown bank, unreadable source, a RUN holding another scan) is
found before the first image is read. The CLI, the demo and tests all come through ``run_scan``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanset import storage
from cleanset.assess import Policy, assess_many
from cleanset.errors import CleansetError, ExitCode, UserError
from cleanset.pipeline.executors import Event, EventFn, get_executor
from cleanset.pipeline.ledger import committed, totals
from cleanset.pipeline.plan import ScanPlan
from cleanset.pipeline.tasks import ScanContext
from cleanset.runs.banks import bank_record, open_banks
from cleanset.runs.layout import SUMMARY, RunDir, write_json_atomic
from cleanset.runs.summary import summarize
from cleanset.signals import DEFAULT_QUALITY_GATE as DEFAULT_QUALITY_GATE


@dataclass
class ScanOptions:
    sources: Sequence[Path | str]  # a str may be a URL (cleanset.storage)
    banks: Sequence[str]
    out: Path | str
    format: str | None = None
    images: Path | None = None  # img2dataset's download of URL metadata, joined back by URL (laion)
    url_col: str | None = None  # the URL column (img2dataset's ``url_col``); None: the source's default
    caption_col: str | None = None  # the caption column (img2dataset's ``caption_col``)
    signals: Sequence[str] | None = None  # None: the engine's defaults
    probes: bool = True  # dihedral + region probes
    quality_gate: int = DEFAULT_QUALITY_GATE
    max_pixels: int | None = None
    policy: Policy = field(default_factory=Policy)
    screen: Any = None  # a ``screening.stage.ScreenConfig``: classifiers, caption rules, dataset scores; None: off
    executor: str = "local"
    workers: int | None = None


@dataclass
class Prepared:
    """A scan ready to run: its context, run directory, manifest and the shards still to do."""

    ctx: ScanContext  # ctx.plan: the same scan as picklable data, for workers that build their own
    run: RunDir
    manifest: dict[str, Any]
    resumed: bool
    shards_total: int
    todo: list[Any]
    done: dict[str, dict[str, Any]]


# Source options that decide how rows are read, so ``clean`` and ``attest`` must open the source with them too.
# (``images`` is left out there: it adds bytes to screen at scan time, and clean writes the metadata rows only.)
REOPEN_OPTIONS = ("url_col", "caption_col")


def source_options(opts: ScanOptions) -> dict[str, Any]:
    """The constructor options the scan opens its source with; only those given, so a source that does not take
    one is told so (``open_source`` refuses it) rather than ignoring what the user asked for."""
    options: dict[str, Any] = {}
    if opts.images is not None:
        options["images"] = Path(opts.images)
    if opts.url_col is not None:
        options["url_col"] = opts.url_col
    if opts.caption_col is not None:
        options["caption_col"] = opts.caption_col
    return options


def reopen_options(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Options for ``open_source`` that read a run's dataset (or its cleaned copy) as its scan did."""
    recorded = manifest.get("source_options") or {}
    return {k: recorded[k] for k in REOPEN_OPTIONS if recorded.get(k) is not None}


class NothingScreened(CleansetError):
    """The scan ran, but every item it found failed: nothing was checked, so nothing can be called clean."""

    exit_code = ExitCode.FAILED_ITEMS


def check_screened(summary: Mapping[str, Any], sources: Sequence[Path]) -> None:
    """Refuse a scan that screened nothing, which would otherwise end like a clean bill of health."""
    shown = ", ".join(map(str, sources))
    if not summary["items"]:
        raise UserError(
            f"the scan found no items in {shown}: nothing was screened. Check the paths and --format (and "
            "--url-col for URL metadata)"
        )
    if summary["failed"] == summary["items"]:
        reasons = summary.get("failures_by_reason") or {}
        top = next(iter(reasons), None)
        raise NothingScreened(
            f"every one of the {summary['items']:,} items in {shown} failed, so nothing was screened"
            + (f" (commonest reason: {top})" if top else "")
        )


def build_engine(opts: ScanOptions, source: Any) -> Any:
    """The engine for this source. URL metadata without images gets the URL signals by default, so the
    manifest lists what was really computed."""
    from cleanset.signals.engine import IMAGE_SIGNALS, URL_SIGNALS, HashConfig, HashEngine

    kw: dict[str, Any] = {"dihedral": opts.probes, "regions": opts.probes}
    if opts.signals is not None:
        kw["signals"] = tuple(opts.signals)
    elif getattr(source, "name", None) == "laion":
        kw["signals"] = URL_SIGNALS if getattr(source, "batchable", True) else IMAGE_SIGNALS + URL_SIGNALS
    if opts.max_pixels is not None:
        kw["max_pixels"] = opts.max_pixels
    return HashEngine(HashConfig(**kw))


def prepare(opts: ScanOptions, snapshots: Sequence[Any] | None = None) -> Prepared:
    """Check everything and open (or reopen) the run. ``snapshots`` lets tests and the demo pass banks directly."""
    from cleanset.matching.matcher import BankMatcher
    from cleanset.sources import open_source
    from cleanset.threads import limit_blas_threads

    limit_blas_threads()  # before the engine warms up and the workers fork
    snaps = list(snapshots) if snapshots is not None else open_banks(opts.banks)
    options = source_options(opts)
    source = open_source(list(opts.sources), opts.format, **options)
    engine = build_engine(opts, source)
    policy = opts.policy.with_allow_banks(s.name for s in snaps if s.allow)
    cfg = engine.config
    config = {
        "sources": [storage.resolved(p) for p in opts.sources],
        "format": source.name,
        "source_options": {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in options.items()},
        "banks": [bank_record(s) for s in snaps],
        "signals": list(cfg.signals),
        "probes": {"dihedral": bool(cfg.dihedral), "regions": bool(cfg.regions)},
        "quality_gate": opts.quality_gate,
        "max_pixels": getattr(cfg, "max_pixels", None),
        "policy": policy.to_dict(),
    }
    # Term lists pinned to the versions they resolve to now, once: the driver, every worker and the manifest then
    # read the same lists even if a new version is imported while the scan runs.
    screen_cfg = opts.screen.pinned() if opts.screen is not None else None
    screening = screen_cfg.build() if screen_cfg is not None else None  # models and lists load, or fail, here
    if screening is not None:
        config["screen"] = screening.describe()
        config["policy"] = policy.to_dict(full=True)  # the rules and thresholds screening was judged by
    run = RunDir.at(opts.out)
    run.check(config)  # refuse a different scan before any costly step
    shards = source.shards()
    ids = [s.id for s in shards]
    if len(set(ids)) != len(ids):
        raise UserError("the source lists two shards with the same id; pass each shard once")
    matcher = BankMatcher.build(snaps, quality_gate=opts.quality_gate)
    manifest, resumed = run.open_for_scan(config)  # written only once everything above held
    done = {k: v for k, v in committed(run).items() if k in set(ids)}
    plan = ScanPlan.of(source, opts.sources, options, snaps, cfg, policy, opts.quality_gate, screen_cfg)
    ctx = ScanContext(source=source, engine=engine, matcher=matcher, policy=policy, snapshots=snaps, plan=plan)
    if screening is not None:  # captions and score columns are read per item: the URL column path reads neither
        ctx.screen, ctx.url_fast_path = screening, False
    return Prepared(ctx, run, manifest, resumed, len(shards), [s for s in shards if s.id not in done], done)


@contextlib.contextmanager
def run_lock(run: RunDir) -> Iterator[None]:
    """One scan at a time per RUN: two would commit the same shards twice over."""
    fd = os.open(run.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{run.path} is being written by another scan") from None
        yield
    finally:
        os.close(fd)


def warm_up(ctx: ScanContext) -> None:
    """Compile and page in everything once in the parent, so forked workers inherit it instead of each paying."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(buf, "JPEG")
    outcome = ctx.engine.hash_bytes(buf.getvalue())
    probes = list(outcome.probes)
    with contextlib.suppress(Exception):
        probes += ctx.engine.hash_url("https://example.org/a.jpg").probes
    assess_many([probes], ctx.matcher, ctx.policy)
    from cleanset.pipeline import urlscan

    if urlscan.applies(ctx.source):
        urlscan.plan_for(ctx)


def execute(
    prep: Prepared,
    executor: str = "local",
    workers: int | None = None,
    on_event: EventFn | None = None,
    on_start: Callable[[Prepared], None] | None = None,
) -> dict[str, Any]:
    """Run the remaining shards and write ``RUN/summary.json``; returns the summary."""
    started = time.time()
    ex = get_executor(executor, workers)
    with run_lock(prep.run):
        for d in (prep.run.items_dir, prep.run.ledger_dir):
            for stale in d.glob("*.tmp*"):  # left by a killed scan; never under a final name
                stale.unlink(missing_ok=True)
        if on_start is not None:
            on_start(prep)
        if prep.todo:
            warm_up(prep.ctx)
            ex.run(prep.todo, prep.ctx, prep.run, on_event or (lambda ev: None))
        entries = committed(prep.run)
        _check_committed(prep, entries)
        summary = summarize([prep.run.items_path(s) for s in sorted(entries)])
        ledger_totals = totals(entries)
        if any(summary[k] != ledger_totals[k] for k in ledger_totals):
            raise AssertionError(f"summary {summary} disagrees with ledger totals {ledger_totals}")
        finished = time.time()
        summary.update(
            banks=[{"name": b["name"], "version": b["version"]} for b in prep.manifest["banks"]],
            shards={"total": prep.shards_total, "committed": len(entries), "resumed": len(prep.done)},
            started=_iso(started),
            finished=_iso(finished),
            elapsed_s=round(finished - started, 3),
            executor=ex.name,
            workers=ex.workers,
        )
        write_json_atomic(prep.run.path / SUMMARY, summary)
        prep.run.push(SUMMARY)
    return summary


def _check_committed(prep: Prepared, entries: Mapping[str, Any]) -> None:
    """Every shard the executor returned must be in the run's ledger here (for a remote run, pushed to the store
    before its local entry moved in): a summary must never claim, or silently miss, a shard. It catches a commit
    the store never took, and Ray workers committing to a local --out the driver cannot see."""
    missing = sorted(s.id for s in prep.todo if s.id not in entries)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CleansetError(
            f"{prep.run.shown}: shards {shown} were reported done but are not committed there; run the scan again "
            "to redo them (with --executor ray, --out must be an object-store URL or a folder every node sees)"
        )


def run_scan(
    opts: ScanOptions,
    snapshots: Sequence[Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    return execute(prepare(opts, snapshots), opts.executor, opts.workers, on_event)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
