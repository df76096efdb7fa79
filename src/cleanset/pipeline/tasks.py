"""One shard, start to finish: read, hash, match, decide, and the table of one row per item.

Nothing in here raises for bad data: an unreadable item, an undecodable image, a source that breaks mid-shard, even
a bug in a hashing hook, becomes a ``failed`` row with its reason, and the counts are checked before anything is
committed. A source whose rows are all in batch columns (``batchable``: URL metadata) takes a column-wise path with
the same results, see ``urlscan``; both decide through ``cleanset.assess``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cleanset.assess import Assessment, Policy, assess_many
from cleanset.pipeline.ledger import ShardCounts
from cleanset.records import HashOutcome, ItemResult, Probe, Status, Verdict
from cleanset.runs.schema import to_table
from cleanset.screening.stage import NOT_CLASSIFIED, combine_scores
from cleanset.signals import given_signals
from cleanset.sources.base import Shard, Source, SourceItem, content_digest, marker_key

if TYPE_CHECKING:
    from cleanset.matching.matcher import BankMatcher
    from cleanset.screening.stage import Screening
    from cleanset.signals.engine import HashEngine, PixelHook

# Content hashes that metadata may carry (columns of a LAION-style parquet); they become probes too.
# File digests a source's metadata may give (md5, sha1, sha256): the byte signals with a results column.
GIVEN_SIGNALS: tuple[str, ...] = given_signals()
MATCH_BATCH = 512
# Hashed items are reported at least this often, not only per match batch: a slow source (large images, one
# worker) takes minutes over 512 items, and a progress view should move from the first second.
PROGRESS_EVERY_S = 0.5

ProgressFn = Callable[[int, int], None]  # (items done since last call, of which failed)


@dataclass
class ScanContext:
    """Everything a worker needs; built once per process (or once before forking, shared copy-on-write)."""

    source: Source
    engine: HashEngine
    matcher: BankMatcher
    policy: Policy = field(default_factory=Policy)
    snapshots: Sequence[Any] = ()  # the banks the matcher was built from (the URL column path's prefilter)
    url_fast_path: bool = True
    url_plan: Any = None  # built once by urlscan.plan_for, before workers fork
    plan: Any = None  # the ``plan.ScanPlan`` this was built from; what a worker without shared memory rebuilds it by
    screen: Screening | None = None  # screening (classifiers, caption rules, dataset scores); None: hashes only


@dataclass
class Timings:
    """Where a shard's time went, in CPU seconds of the process that scanned it (wall time would count the
    waits for other processes on a busy machine): the bench's overhead breakdown, kept in the ledger."""

    read_s: float = 0.0
    hash_s: float = 0.0
    screen_s: float = 0.0  # classifier inference, caption rules and dataset scores (the pixel preparation is in hash_s)
    match_s: float = 0.0
    decide_s: float = 0.0  # verdicts and building the table
    write_s: float = 0.0  # the atomic commit

    def as_dict(self) -> dict[str, float]:
        keys = ("read_s", "hash_s", "match_s", "decide_s", "write_s") + (("screen_s",) if self.screen_s else ())
        return {k: round(getattr(self, k), 4) for k in keys}


@dataclass
class ShardResult:
    shard: Shard
    table: pa.Table
    counts: ShardCounts
    elapsed_s: float
    timings: Timings = field(default_factory=Timings)
    source_sha256: str | None = None  # Source.shard_digest after the read, recorded in the ledger


def scan_shard(shard: Shard, ctx: ScanContext, progress: ProgressFn | None = None) -> ShardResult:
    """Scan one shard; the result's counts are checked (items = kept + removed + review + failed)."""
    t0 = time.perf_counter()
    timings = Timings()
    table: pa.Table | None = None
    if ctx.url_fast_path:
        from cleanset.pipeline import urlscan

        if urlscan.applies(ctx.source):
            table = urlscan.scan_url_shard(shard, ctx, progress, timings)
    if table is None:
        results = list(iter_results(shard, ctx, progress, timings))
        t = time.process_time()
        table = to_table(results)
        timings.decide_s += time.process_time() - t
    counts = ShardCounts.of_table(table)
    counts.check(f"shard {shard.id}")
    source_sha256 = ctx.source.shard_digest(shard)
    if not ctx.source.item_content:  # the shard file is the unit clean checks; rows carry no digest of their own
        i = table.schema.get_field_index("content_sha256")
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, pa.string()))
    return ShardResult(
        shard=shard,
        table=table,
        counts=counts,
        elapsed_s=time.perf_counter() - t0,
        timings=timings,
        source_sha256=source_sha256,
    )


def iter_results(
    shard: Shard, ctx: ScanContext, progress: ProgressFn | None = None, timings: Timings | None = None
) -> Iterator[ItemResult]:
    """Per-item path, matching in batches (the matcher amortises its index lookups over a batch)."""
    tm = timings if timings is not None else Timings()
    screen = ctx.screen
    batch: list[tuple[SourceItem, HashOutcome, list[str]]] = []
    lists: list[list[str]] = []  # per item of ``batch``: the term lists its caption matched (screening only)
    shown = 0  # items of ``batch`` already reported (their failures are told when the batch is matched)
    report_at = time.monotonic() + PROGRESS_EVERY_S
    clock = time.process_time
    t = clock()
    for item in safe_items(ctx.source, shard):
        t1 = clock()
        tm.read_s += t1 - t
        hook, inputs = screen.pixel_hook() if screen is not None else (None, None)
        outcome, notes = outcome_of(item, ctx.engine, hook)
        content = _content(item, outcome) if item.error is None else None
        item.data, item.parts, item.extras = None, [], []  # hashed: let the allocator reuse the bytes
        item.digest = content
        batch.append((item, outcome, notes))
        t = clock()
        tm.hash_s += t - t1
        if screen is not None:
            lists.append(_screen(screen, item, outcome, notes, inputs))
            tm.screen_s += clock() - t
        if len(batch) >= MATCH_BATCH:
            yield from _finish(batch, shard, ctx, progress, tm, shown, lists)
            batch, shown, lists = [], 0, []
            t = clock()
        elif progress is not None and time.monotonic() >= report_at:
            progress(len(batch) - shown, 0)
            shown, report_at = len(batch), time.monotonic() + PROGRESS_EVERY_S
    tm.read_s += clock() - t
    if batch:
        yield from _finish(batch, shard, ctx, progress, tm, shown, lists)


def _screen(
    screen: Screening,
    item: SourceItem,
    outcome: HashOutcome,
    notes: list[str],
    inputs: list[list[Any]] | None,
) -> list[str]:
    """Caption rules and dataset scores now, the classifiers with the next batch; returns the matched lists.

    A failed item is not screened (it gets no verdict); an item with pixels is classified; one without (a URL row)
    has its caption and scores only, which is all a metadata row holds."""
    if outcome.status is not Status.OK:
        return []
    scores, labels, more = screen.text_and_scores(item.meta)
    outcome.scores.update(scores)
    notes.extend(more)
    if inputs is not None and any(inputs):
        screen.queue(outcome.scores, inputs)
    elif screen.classifiers:
        notes.append(NOT_CLASSIFIED)  # a URL row: the report counts these, so no one reads silence as "clean"
    return labels


def _finish(
    batch: list[tuple[SourceItem, HashOutcome, list[str]]],
    shard: Shard,
    ctx: ScanContext,
    progress: ProgressFn | None,
    tm: Timings,
    shown: int = 0,
    lists: Sequence[list[str]] = (),
) -> Iterator[ItemResult]:
    if ctx.screen is not None:
        ts = time.process_time()
        unscored = ctx.screen.flush()  # every queued item's classifier scores, before any of them is judged
        for _, o, _ in batch if unscored else ():
            missing = ctx.screen.missing(unscored, o.scores)
            if missing and o.status is Status.OK:  # fail closed: kept without its score is kept unscreened
                o.status, o.reason = Status.FAILED, f"not screened: no score from classifier(s) {', '.join(missing)}"
        tm.screen_s += time.process_time() - ts
    t0 = time.process_time()
    assessed = assess_many(
        [o.probes for _, o, _ in batch],
        ctx.matcher,
        ctx.policy,
        statuses=[o.status for _, o, _ in batch],
        scores=[o.scores for _, o, _ in batch],
    )
    t1 = time.process_time()
    tm.match_s += t1 - t0  # the verdicts too: assess makes them with the matches
    failed = 0
    out = []
    for k, ((item, outcome, own_notes), a) in enumerate(zip(batch, assessed, strict=True)):
        r = build_result(item, outcome, shard, a, own_notes)
        if lists and lists[k]:
            r.text_lists = list(lists[k])
            # A caption that matched a term list holds the listed term: results name the list, never the term, so
            # the caption is not kept for the report either.
            if r.caption is not None:
                r.caption = None
                r.notes.append("caption withheld: it matched a term list")
        failed += r.status is Status.FAILED
        out.append(r)
    tm.decide_s += time.process_time() - t1
    if progress is not None:
        progress(len(batch) - shown, failed)
    yield from out


def build_result(
    item: SourceItem, outcome: HashOutcome, shard: Shard, assessment: Assessment, own_notes: Sequence[str] = ()
) -> ItemResult:
    """The committed row: the hashing outcome plus what ``assess`` said (its reasons are not stored: the matches
    and the run's policy give them back, and the schema stays as other readers know it)."""
    verdict = assessment.verdict
    return ItemResult(
        key=item.key,
        shard=shard.id,
        status=outcome.status,
        reason=outcome.reason,
        verdict=verdict,
        hashes=dict(outcome.hashes),
        pdq_quality=outcome.pdq_quality,
        width=outcome.width,
        height=outcome.height,
        format=outcome.format,
        url=item.url,
        caption=caption_of(item, verdict),
        content_sha256=item.digest,
        probes=list(outcome.probes),
        matches=list(assessment.matches),
        scores=dict(outcome.scores),
        notes=[*own_notes, *assessment.notes],
        rules=list(assessment.rules),
    )


# Verdicts whose items the report lists one by one, with their captions; other items' captions are not kept.
FLAGGED: tuple[str, ...] = ("remove", "review")


def _content(item: SourceItem, outcome: HashOutcome) -> str | None:
    """The item's content digest, reusing the engine's sha256 when that is the same value (bytes alone): a
    default signal need not be computed twice on the hot path."""
    sha = outcome.hashes.get("sha256")
    if sha is not None and item.digest is None and not item.parts and not item.extras and item.data is not None:
        return sha
    return content_digest(item)


def caption_of(item: SourceItem, verdict: Verdict | None) -> str | None:
    caption = item.meta.get("caption")
    return caption if isinstance(caption, str) and verdict in FLAGGED else None


def safe_items(source: Source, shard: Shard) -> Iterator[SourceItem]:
    """The source's items; if the reader itself breaks (it should not), the rest of the shard is one failed row
    rather than a crash or a silent end."""
    it: Iterator[SourceItem] | None = None
    while True:
        try:
            if it is None:
                it = iter(source.read(shard))
            item = next(it)
        except StopIteration:
            return
        except Exception as e:  # fail closed: a reader bug must not lose the rest of the shard silently
            yield SourceItem(key=marker_key(shard.id, "unread"), error=f"read: reader stopped: {type(e).__name__}: {e}")
            return
        yield item


def outcome_of(
    item: SourceItem, engine: HashEngine, on_pixels: PixelHook | None = None
) -> tuple[HashOutcome, list[str]]:
    """Hash what the item holds (bytes, URL or both) and add metadata hashes as probes; returns notes too.
    ``on_pixels`` sees every decoded frame of the item and its parts (screening)."""
    if item.error is not None:  # nothing was read: nothing is hashed or matched, the reason is the record
        return HashOutcome.failed(item.error), []
    try:
        outcome = _hash_item(item, engine, on_pixels)
    except Exception as e:  # the engine never raises for bad data; anything else is still this item's failure
        outcome = HashOutcome.failed(f"hash: internal error: {type(e).__name__}: {e}")
    return outcome, add_given_hashes(outcome, item.given_hashes)


def _hash_item(item: SourceItem, engine: HashEngine, on_pixels: PixelHook | None = None) -> HashOutcome:
    if item.data is not None:
        outcome = engine.hash_bytes(item.data, on_pixels) if on_pixels is not None else engine.hash_bytes(item.data)
        if item.parts and outcome.status is Status.OK:
            _add_parts(outcome, item.parts, engine, on_pixels)
        if item.url:
            u = engine.hash_url(item.url)
            if u.status is Status.OK:
                outcome.hashes.update(u.hashes)
                outcome.probes.extend(u.probes)
        return outcome
    if item.url is not None:
        return engine.hash_url(item.url)
    if item.given_hashes:  # metadata row with content hashes only: those are its probes
        return HashOutcome(status=Status.OK)
    return HashOutcome.failed("read: item holds neither image bytes nor a URL")


def _add_parts(
    outcome: HashOutcome, parts: Sequence[tuple[str, bytes]], engine: HashEngine, on_pixels: PixelHook | None = None
) -> None:
    """Hash the item's other image byte streams into its probes (``<part>/<probe>``); one that cannot be screened
    fails the whole item, since its bytes would otherwise leave unchecked with the rest of the row."""
    for name, data in parts:
        part = engine.hash_bytes(data, on_pixels) if on_pixels is not None else engine.hash_bytes(data)
        outcome.probes.extend(Probe(f"{name}/{p.name}", p.signal, p.value, p.quality) for p in part.probes)
        for score, value in part.scores.items():
            outcome.scores[score] = combine_scores(outcome.scores.get(score), value)
        if part.status is not Status.OK:
            outcome.status = Status.FAILED
            outcome.reason = f"{name}: {part.reason}"
            return


def add_given_hashes(outcome: HashOutcome, given: dict[str, str]) -> list[str]:
    """Metadata hashes become probes named by their signal (``md5``), or ``given/md5`` when the content was
    hashed too and disagrees; a malformed one is noted, never fatal (the item is still checked by the rest)."""
    notes: list[str] = []
    if not given:
        return notes
    from cleanset.signals import get_signal

    for sig in GIVEN_SIGNALS:
        raw = given.get(sig)
        if raw is None or raw == "":
            continue
        try:
            value = get_signal(sig).validate(str(raw))
        except ValueError as e:
            notes.append(f"given {sig} ignored: {e}")
            continue
        own = outcome.hashes.get(sig)
        if own is None:
            outcome.hashes[sig] = value
            outcome.probes.append(Probe(sig, sig, value))
        elif own != value:
            outcome.probes.append(Probe(f"given/{sig}", sig, value))
            notes.append(f"given {sig} differs from the content's")
    return notes
