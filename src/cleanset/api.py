"""The Python API: what the CLI, the demo, the benches and a service call instead of composing stages themselves.

One function per question a caller asks: what do these banks say about these bytes, these hashes, this URL; scan a
dataset; clean, attest, verify, report. Each is a thin composition of the layers below (``assess`` makes every
verdict, ``pipeline.scan`` runs every scan), so an answer here is the answer the CLI gives.

Answers never hold list values: a match names its bank, version, entry id, signal, the probe that hit and the
distance. A failure is data with a stable ``code`` (``records.FAILURE_CODES``) beside its free-text detail.

A whole round trip on a picture made here (benign: flat colour), against a bank built from its own hash::

    >>> import io, tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> import cleanset.api as api
    >>> buf = io.BytesIO(); Image.new("RGB", (96, 64), (200, 120, 40)).save(buf, "PNG")
    >>> data = buf.getvalue()
    >>> import hashlib
    >>> home = Path(tempfile.mkdtemp())
    >>> banks = api.banks_from_rows(home, "standin", [("md5", hashlib.md5(data).hexdigest(), "e1")])
    >>> check = api.check_bytes(data, banks)
    >>> check.verdict, [(m.bank, m.entry_id, m.signal, m.distance) for m in check.matches]
    ('remove', [('standin', 'e1', 'md5', 0)])
    >>> api.check_hashes({"md5": hashlib.md5(b"other").hexdigest()}, banks).verdict
    'keep'
    >>> bad = api.check_bytes(b"not an image", banks)
    >>> bad.failure is not None and bad.failure.code
    'decode'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanset.records import HashOutcome, Match, Probe, Status, failure_code

if TYPE_CHECKING:
    from cleanset.actions.clean import CleanReport
    from cleanset.actions.verify import VerifyResult
    from cleanset.assess import Policy
    from cleanset.matching.matcher import BankMatcher
    from cleanset.pipeline.events import Event
    from cleanset.pipeline.scan import Prepared
    from cleanset.signals.engine import HashEngine

__all__ = [
    "Banks",
    "Check",
    "Failure",
    "attest",
    "banks_from_rows",
    "check_bytes",
    "check_hashes",
    "check_many",
    "check_text",
    "check_url",
    "clean",
    "hash_bytes",
    "hasher",
    "neighbours",
    "open_banks",
    "report",
    "scan",
    "verify",
]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an item could not be checked: a stable ``code`` to branch on, the free-text ``detail`` to show."""

    code: str
    detail: str

    @classmethod
    def of(cls, reason: str | None) -> Failure:
        return cls(failure_code(reason), reason or "")


@dataclass(frozen=True, slots=True)
class Check:
    """The answer about one item. ``verdict`` is None exactly when ``failure`` is set: an item that could not be
    hashed is not called clean. ``hashes`` are the item's own values (not list values)."""

    verdict: str | None
    matches: tuple[Match, ...]
    reasons: tuple[str, ...]
    failure: Failure | None = None
    hashes: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # screening: the scores the policy read, the rules that fired, the term lists that matched (``category:list@v``)
    scores: Mapping[str, float] = field(default_factory=dict)
    rules: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the same shape ``cleanset match`` and a service answer with."""
        return {
            "verdict": self.verdict,
            "matches": [
                {
                    "bank": m.bank,
                    "version": m.version,
                    "entry_id": m.entry_id,
                    "signal": m.signal,
                    "probe": m.probe,
                    "distance": m.distance,
                }
                for m in self.matches
            ],
            "reasons": list(self.reasons),
            "failure": None if self.failure is None else {"code": self.failure.code, "detail": self.failure.detail},
            "notes": list(self.notes),
            "scores": dict(self.scores),
            "rules": list(self.rules),
            "lists": list(self.lists),
        }


class Banks:
    """Bank snapshots and the matcher over them, built once and reused for any number of checks.

    Building the indexes is the costly part of a check, so a caller (a service, a notebook) opens banks once and
    passes this object around; the hashing engine is made on first use and kept too.
    """

    def __init__(self, snapshots: Sequence[Any], quality_gate: int | None = None) -> None:
        from cleanset.assess.core import DEFAULT_QUALITY_GATE

        self.snapshots = list(snapshots)
        self.quality_gate = DEFAULT_QUALITY_GATE if quality_gate is None else quality_gate
        self._matcher: BankMatcher | None = None
        self._engine: HashEngine | None = None

    @property
    def matcher(self) -> BankMatcher:
        """Built on first check, not on opening: a scan builds its own (with the scan's quality gate)."""
        if self._matcher is None:
            from cleanset.matching.matcher import BankMatcher

            self._matcher = BankMatcher.build(self.snapshots, quality_gate=self.quality_gate)
        return self._matcher

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.snapshots]

    def policy(self, policy: Policy | None) -> Policy:
        """``policy`` (default: remove on any match) with these banks' allow lists counted as allow banks."""
        from cleanset.assess import Policy

        return (policy or Policy()).with_allow_banks(s.name for s in self.snapshots if s.allow)

    def engine(self) -> HashEngine:
        if self._engine is None:
            from cleanset.signals.engine import HashEngine

            self._engine = HashEngine()
        return self._engine

    def with_thresholds(self, thresholds: Mapping[str, Mapping[str, int]]) -> Banks:
        """These banks asked at other thresholds (``{bank: {signal: bits}}``) over the same built indexes: a
        service caller's threshold is a view, not a rebuild. Whether a caller may raise one is the caller's rule."""
        from dataclasses import replace

        from cleanset.matching.matcher import BankMatcher

        m = self.matcher
        out = Banks(self.snapshots, self.quality_gate)
        out._matcher = BankMatcher(
            [replace(b, threshold=thresholds.get(b.bank, {}).get(b.signal, b.threshold)) for b in m.indexes],
            m.quality_gate,
        )
        out._engine = self._engine
        return out

    def replacing(self, snapshot: Any, built: Banks | None = None) -> Banks:
        """These banks with ``snapshot`` in place of the bank of its name (or added): only its indexes are built,
        the others are shared, so reloading one bank of a service costs that bank's build alone. ``built``:
        ``Banks([snapshot])`` with its matcher already built (a service stages a new version before the reload)."""
        from cleanset.matching.matcher import BankMatcher

        fresh = built.matcher if built is not None else BankMatcher.build([snapshot], quality_gate=self.quality_gate)
        kept = [b for b in self.matcher.indexes if b.bank != snapshot.name]
        out = Banks([*(s for s in self.snapshots if s.name != snapshot.name), snapshot], self.quality_gate)
        out._matcher = BankMatcher([*kept, *fresh.indexes], self.quality_gate)
        out._engine = self._engine
        return out


def open_banks(names: Sequence[str], quality_gate: int | None = None) -> Banks:
    """Banks from the store by ``NAME`` or ``NAME@VERSION`` (``CLEANSET_HOME``); an unknown name is a UserError."""
    from cleanset.runs.banks import open_banks as open_snapshots

    return Banks(open_snapshots(list(names)), quality_gate)


def banks_from_rows(home: Path, name: str, rows: Iterable[tuple[str, str, str]], allow: bool = False) -> Banks:
    """A bank made from ``(signal, hex value, entry id)`` rows in the store at ``home``: for tests, examples and
    demos that must not depend on a real list. The store is owner-only, as any bank store."""
    from cleanset.banks.base import BankRow
    from cleanset.banks.store import BankStore

    store = BankStore(Path(home))
    store.create_from_rows(name, [BankRow(sig, value, entry) for sig, value, entry in rows], allow=allow)
    return Banks([store.open(name)])


def _answer(
    probes: Sequence[Probe],
    banks: Banks,
    policy: Policy | None,
    scores: Mapping[str, float] | None,
    hashes: Mapping[str, str],
    status: Status = Status.OK,
    reason: str | None = None,
) -> Check:
    from cleanset.assess import assess

    a = assess(
        probes, banks.matcher, banks.policy(policy), status=status, scores=scores, quality_gate=banks.quality_gate
    )
    failure = Failure.of(reason) if status is Status.FAILED else None
    verdict = None if a.verdict is None else str(a.verdict)
    return Check(verdict, a.matches, a.reasons, failure, dict(hashes), a.notes, dict(scores or {}), a.rules)


def hasher(
    signals: Sequence[str] | None = None,
    *,
    dihedral: bool = True,
    regions: bool = True,
    max_pixels: int | None = None,
) -> HashEngine:
    """A hashing engine to reuse over many inputs (``engine.hash_bytes``, ``engine.hash_url``); ``signals`` None:
    every default image signal, all computed from one decode."""
    from cleanset.signals.engine import HashConfig, HashEngine

    kw: dict[str, Any] = {"dihedral": dihedral, "regions": regions}
    if signals is not None:
        kw["signals"] = tuple(signals)
    if max_pixels is not None:
        kw["max_pixels"] = max_pixels
    return HashEngine(HashConfig(**kw))


def hash_bytes(data: bytes, signals: Sequence[str] | None = None, *, probes: bool = True) -> HashOutcome:
    """The item's own hashes (not list values: safe to store and print) and its probes; a failure is a
    ``HashOutcome`` with status failed and a reason, never an exception. For many inputs, reuse ``hasher()``."""
    return hasher(signals, dihedral=probes, regions=probes).hash_bytes(data)


def check_bytes(
    data: bytes, banks: Banks, policy: Policy | None = None, *, screen: Any = None, engine: HashEngine | None = None
) -> Check:
    """Hash ``data`` with every default signal (one decode) and assess it against ``banks``. Bytes that do not
    decode still have their file digests matched: a known file is found even when no decoder reads it.

    ``screen``: a ``screening.stage.ScreenConfig`` (or a built ``Screening``, to reuse across calls) also runs its
    classifiers on the same decode; their scores and the rules they fire come back in ``scores`` and ``rules``.
    ``engine``: a ``hasher`` of the caller's own limits (a service's pixel and frame caps) instead of the banks'."""
    engine = engine or banks.engine()
    if screen is None:
        out = engine.hash_bytes(data)
        return _answer(out.probes, banks, policy, out.scores, out.hashes, out.status, out.reason)
    screening = screen.build() if hasattr(screen, "build") else screen
    hook, inputs = screening.pixel_hook()
    out = engine.hash_bytes(data, hook)
    scores = dict(out.scores)
    status, reason = out.status, out.reason
    if status is Status.OK:
        # This call's own inputs, scored now: a shared queue would let another thread's flush take them.
        missing = screening.classify(scores, inputs)
        if missing:
            status, reason = Status.FAILED, f"not screened: no score from classifier(s) {', '.join(missing)}"
    return _answer(out.probes, banks, policy, scores, out.hashes, status, reason)


def check_url(url: str, banks: Banks, policy: Policy | None = None) -> Check:
    """Assess a URL against URL lists (``url_md5``/``url_sha1`` of its canonical form); nothing is fetched."""
    out = banks.engine().hash_url(url)
    return _answer(out.probes, banks, policy, out.scores, out.hashes, out.status, out.reason)


def check_text(
    text: str,
    lists: Sequence[str] | None = None,
    policy: Policy | str | None = None,
    *,
    defaults: bool = True,
) -> Check:
    """Screen a caption or a text-to-image prompt against term lists: the shipped defaults (``defaults``) and the
    imported lists named in ``lists`` (``NAME`` or ``NAME@VERSION``). ``policy``: a ``Policy``, or ``default`` /
    ``strict`` / a TOML path. The answer names the lists that matched (``lists``: ``category:name@version``) and the
    rules that fired, never the term. Minor and sexual terms together are ``review`` under the default policy
    (``strict``: ``remove``, i.e. refuse the prompt)::

        >>> check_text("a red bicycle by the lake").verdict
        'keep'
    """
    from cleanset.assess import judgement, load_policy
    from cleanset.screening.terms import resolve_lists
    from cleanset.screening.text import screen_text

    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    from cleanset.errors import UserError
    from cleanset.screening.text import MAX_TEXT

    if len(text) > MAX_TEXT:
        raise UserError(f"text of {len(text):,} characters: check_text takes at most {MAX_TEXT:,}")
    pol = policy if policy is None or not isinstance(policy, str) else load_policy(policy)
    result = screen_text(text, resolve_lists(list(lists) if lists else None, defaults=defaults))
    scores = result.scores
    j = judgement(Status.OK, (), scores, pol)
    reasons = [f"terms of list {label}" for label in result.labels] + (
        [] if not scores else [r for r in j.reasons if r != "no match in any bank"]
    )
    return Check(
        None if j.verdict is None else str(j.verdict),
        (),
        tuple(reasons or ["no listed term"]),
        scores=scores,
        rules=tuple(j.rules),
        lists=tuple(result.labels),
    )


def hash_probes(hashes: Mapping[str, str]) -> list[Probe]:
    """``{signal: hex}`` as probes, each value validated by its signal (a ValueError naming what is wrong), and
    matched against its signal's lists (``pdq512`` against pdq)."""
    from cleanset.signals import get_signal

    probes = []
    for sig, value in hashes.items():
        signal = get_signal(sig)
        probes.append(Probe(sig, signal.matches(), signal.validate(value)))
    return probes


def _probes(hashes: Mapping[str, str] | Sequence[Probe]) -> tuple[list[Probe], dict[str, str]]:
    if not isinstance(hashes, Mapping):
        return list(hashes), {}
    return hash_probes(hashes), dict(hashes)


def check_hashes(hashes: Mapping[str, str] | Sequence[Probe], banks: Banks, policy: Policy | None = None) -> Check:
    """Assess hashes computed elsewhere: ``{signal: hex}`` (each validated by its signal; ``pdq512`` is matched
    against pdq lists) or probes as a scan records them. A malformed value is a ValueError naming it."""
    return check_many([hashes], banks, policy)[0]


def check_many(
    items: Sequence[Mapping[str, str] | Sequence[Probe]],
    banks: Banks,
    policy: Policy | None = None,
    *,
    failed: Sequence[str | None] | None = None,
) -> list[Check]:
    """``check_hashes`` for a batch, answered with one index query per (bank, signal) for the whole batch, which
    is what makes a million hashes fast. ``failed``: per item, the reason it could not be hashed (None: it was);
    a failed item's file digests are still matched but it gets no verdict."""
    from cleanset.assess import assess_many

    pairs = [_probes(h) for h in items]
    reasons = list(failed) if failed is not None else [None] * len(pairs)
    statuses = [Status.OK if r is None else Status.FAILED for r in reasons]
    assessed = assess_many(
        [p for p, _ in pairs], banks.matcher, banks.policy(policy), statuses=statuses, quality_gate=banks.quality_gate
    )
    return [
        Check(
            None if a.verdict is None else str(a.verdict),
            a.matches,
            a.reasons,
            None if r is None else Failure.of(r),
            given,
            a.notes,
        )
        for (_, given), r, a in zip(pairs, reasons, assessed, strict=True)
    ]


def scan(
    sources: Sequence[Path | str],
    banks: Sequence[str] | Banks,
    out: Path | str,
    *,
    on_event: Callable[[Event], None] | None = None,
    on_start: Callable[[Prepared], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Scan a dataset into the run folder ``out``; returns the summary (also ``out/summary.json``).

    ``banks``: names (``NAME[@VERSION]``) or opened ``Banks``. ``options`` are ``pipeline.scan.ScanOptions``'
    fields (``format``, ``signals``, ``probes``, ``policy``, ``executor``, ``workers``, ...); ``on_event`` receives
    ``pipeline.events`` (progress, shard done, retry, gave up); ``on_start`` the prepared scan (run folder opened,
    shards to do known, nothing read yet), e.g. to size a progress bar. Rerun with the same ``out`` to resume.
    Everything that can be wrong with the call is raised before the first image is read."""
    from cleanset.pipeline.scan import ScanOptions, execute, prepare
    from cleanset.storage import location

    names = banks.names if isinstance(banks, Banks) else list(banks)
    snaps = banks.snapshots if isinstance(banks, Banks) else None
    opts = ScanOptions(sources=[location(p) for p in sources], banks=names, out=location(out), **options)
    return execute(prepare(opts, snaps), opts.executor, opts.workers, on_event, on_start)


def neighbours(
    run: Path | str,
    embeddings: str | Path | Any,
    *,
    sources: Sequence[Path | str] = (),
    k: int | None = None,
    min_similarity: float | None = None,
) -> Any:
    """Score the neighbours of every hit of ``run`` in embedding space and judge them again, as the run's next
    revision (``pipeline.neighbours``). ``embeddings``: an array (one row per item, in the dataset's order), a
    ``.npy`` file or folder (LAION's ``img_emb``), or ``column:NAME`` of the Parquet files in ``sources``."""
    import numpy as np

    from cleanset.pipeline.neighbours import neighbour_pass, shard_embeddings
    from cleanset.screening.neighbours import DEFAULT_K, DEFAULT_MIN_SIMILARITY, load_embeddings

    run = _own_run(run)  # refused before any embedding is read
    array: Any
    if isinstance(embeddings, np.ndarray):
        array, shown = embeddings, "array"
    elif str(embeddings).startswith("column:"):
        # Per shard, from the file each shard was scanned from: a listing's order is not the run's.
        array, shown = shard_embeddings(run, str(embeddings)[len("column:") :], sources), str(embeddings)
    else:
        array, shown = load_embeddings(embeddings), str(embeddings)
    return neighbour_pass(
        run,
        array,
        DEFAULT_K if k is None else k,
        DEFAULT_MIN_SIMILARITY if min_similarity is None else min_similarity,
        source=shown,
    )


def clean(sources: Sequence[Path | str], run: Path | str, out: Path | str, **options: Any) -> CleanReport:
    """Write the cleaned dataset (only bytes the scan screened and kept, re-checked by digest); returns the
    ``CleanReport``. ``options``: ``keep_review``, ``keep_failed``, ``format``, ``on_shard``."""
    from cleanset.actions.clean import clean as _clean
    from cleanset.storage import location

    return _clean([location(p) for p in sources], location(run), location(out), **options)


def _paths(p: Path | str | Sequence[Path | str], what: str = "the dataset") -> list[Path]:
    return [_local(p, what)] if isinstance(p, str | Path) else [_local(x, what) for x in p]


def _own_run(p: Path | str) -> Path:
    """A run this step may write into or vouch for: local, and not the working copy of a run on object storage
    (its store may already hold newer revisions, and what is written here is never pushed)."""
    from cleanset.errors import UserError
    from cleanset.storage import is_working_copy

    path = _local(p, "the run")
    if is_working_copy(path):
        raise UserError(
            f"{path} is the working copy of a run on object storage: it may be behind the store, and nothing written "
            "here reaches it. Copy the run down from the store and use that copy"
        )
    return path


def _local(p: Path | str, what: str) -> Path:
    """``p`` as a local path; a URL is refused by name (``Path("s3://b/k")`` would quietly be ``s3:/b/k``). What
    reads a whole folder byte by byte (attest, verify) or rewrites a run in place (neighbours, report) works on
    local copies only."""
    from cleanset.errors import UserError
    from cleanset.storage import is_url

    if is_url(p):
        raise UserError(f"{what} {p} is a URL: this step needs a local copy (download it, then pass its path)")
    return Path(p)


def attest(
    run: Path | str, dataset: Path | str | Sequence[Path | str], key: Any, out: Path | str, format: str | None = None
) -> dict[str, Any]:
    """Sign an attestation over the cleaned folder ``dataset`` (Ed25519 private key, or a path to its PEM file);
    returns the in-toto statement."""
    from cleanset.actions import dsse
    from cleanset.actions.attestation import attest as _attest

    run = _own_run(run)  # before the key is read: a working copy is refused whatever the key
    if isinstance(key, str | Path):
        key = dsse.load_private_key(Path(key))
    return _attest(run=run, dataset=_paths(dataset), key=key, out=_local(out, "--out"), format=format)


def verify(
    dataset: Path | str | Sequence[Path | str],
    attestation: Path | str,
    public_key: Any = None,
    leaves: Path | str | None = None,
) -> VerifyResult:
    """Check ``dataset`` against an attestation; returns ``VerifyResult`` (no differences: verified). A bad
    signature or statement raises ``VerificationError``. ``public_key``: key object, PEM path, or None (integrity
    only: the statement names its own signer)."""
    from cleanset.actions import dsse
    from cleanset.actions.verify import verify as _verify

    if isinstance(public_key, str | Path):
        public_key = dsse.load_public_key(Path(public_key))
    return _verify(
        _paths(dataset),
        _local(attestation, "the attestation"),
        public_key,
        None if leaves is None else _local(leaves, "--leaves"),
    )


def report(run: Path | str, revision: int | None = None, json_out: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write ``run/report.html`` (and ``report.json``); returns its path and the data it shows."""
    from cleanset.actions.report import write_report

    return write_report(_local(run, "the run"), revision, json_out)
