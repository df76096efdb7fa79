"""The robustness benchmark: how often a transformed copy of a banked photo is still caught, and at what price.

Half of the photos (every other one) become a stand-in bank of their original PDQ and pHash values. Every photo,
banked or not, goes through every transform and is hashed the way a scan hashes it (``HashEngine`` with dihedral
and region probes), then judged the way a scan judges it: ``cleanset.assess`` over a ``BankMatcher`` of the
stand-in bank, so the figures are the scan's own rules and not a second matcher's. Three probe sets are compared:

- ``pdq``: the transformed image's own PDQ (``pdq/original``) only, what a plain PDQ lookup does;
- ``probes``: every PDQ probe cleanset makes (eight dihedral hashes of the image and of each proposed region);
- ``phash``: the 64-bit pHash at its own threshold.

Recall counts banked photos whose transformed copy is flagged (not kept) with a match to their own entry. A false
match is any match of an unbanked photo's transformed copy to any entry, or of a banked photo's copy to an entry
that is not its own: these are distinct pictures, so every one is a matcher error. PDQ probes below the quality gate
count only at distance 0, as in the matcher. The distance distributions (median, p95) are measured separately by
brute force, since they include the misses, which no matcher reports.

The cost figure times plain hashing (PDQ with its dihedral hashes) against hashing with region probes on the
untransformed photos, in the same process, alternating, best of several rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cleanset.assess import Assessment, Policy, assess_many
from cleanset.banks.base import MemoryBank
from cleanset.errors import UserError
from cleanset.evaluation.corpus import Photo, collect_files, is_photograph, load_photos, skimage_files
from cleanset.evaluation.transforms import TRANSFORMS, jpeg_bytes, transform_names
from cleanset.imaging.regions import find_regions
from cleanset.matching.matcher import BankMatcher
from cleanset.records import HashOutcome, Probe, Verdict
from cleanset.signals import DEFAULT_QUALITY_GATE, get_signal
from cleanset.signals.engine import HashConfig, HashEngine

QUALITY_GATE = DEFAULT_QUALITY_GATE
METHODS = ("pdq", "probes", "phash")

# progress(stage, done, total): stage "loading" and "timing" (total None: no count to give), "transforms".
Progress = Callable[[str, int, int | None], None]


@dataclass
class MethodStats:
    """Recall and distance distribution of one matcher on one transform (distances to the photo's own entry)."""

    hits: int = 0
    trials: int = 0
    distances: list[int] = field(default_factory=list)
    false_matches: int = 0

    @property
    def recall(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.distances, q)) if self.distances else float("nan")


@dataclass
class TransformRow:
    name: str
    family: str
    stats: dict[str, MethodStats]
    matched_by: dict[str, int] = field(default_factory=dict)  # probe name prefix -> banked photos it caught


@dataclass
class Cost:
    """Best-of-rounds seconds for all photos: on decoded pixels (hash only) and from JPEG files (decode + hash)."""

    photos: int
    plain_s: float
    probes_s: float
    with_regions: int
    plain_file_s: float = float("nan")
    probes_file_s: float = float("nan")

    @property
    def overhead(self) -> float:
        return self.probes_s / self.plain_s - 1.0

    @property
    def file_overhead(self) -> float:
        return self.probes_file_s / self.plain_file_s - 1.0


@dataclass
class RobustnessResult:
    photos: int
    banked: int
    dropped: list[str]
    threshold: int
    phash_threshold: int
    rows: list[TransformRow]
    comparisons: dict[str, int]  # method -> distinct-photo comparisons made (queries x entries)
    cost: Cost | None

    def row(self, name: str) -> TransformRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def false_matches(self, method: str) -> int:
        return sum(r.stats[method].false_matches for r in self.rows)


def _bits(hexes: Sequence[str]) -> np.ndarray:
    raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(len(hexes), -1)
    return np.unpackbits(raw, axis=1)


@dataclass
class _Bank:
    """The stand-in bank as bit matrices (brute-force Hamming is exact and fast at this size)."""

    pdq: np.ndarray  # (n, 256)
    phash: np.ndarray  # (n, 64)

    @classmethod
    def from_memory(cls, bank: MemoryBank) -> _Bank:
        return cls(np.unpackbits(bank.values("pdq"), axis=1), np.unpackbits(bank.values("phash"), axis=1))


def _pdq_distances(outcome: HashOutcome, bank: np.ndarray, plain: bool) -> tuple[np.ndarray, list[str]]:
    """Gated distances (probes x entries) of the outcome's PDQ probes; a low-quality probe only counts at 0."""
    probes = [p for p in outcome.probes if p.signal == "pdq" and (not plain or p.name == "pdq/original")]
    if not probes:
        return np.full((0, len(bank)), 256), []
    d = (_bits([p.value for p in probes])[:, None, :] != bank[None, :, :]).sum(axis=2)
    low = np.array([(p.quality or 0) < QUALITY_GATE for p in probes])
    d[low] = np.where(d[low] == 0, 0, 256)
    return d, [p.name for p in probes]


def _method_probes(outcome: HashOutcome) -> dict[str, list[Probe]]:
    """What each compared method asks the banks with, from one hashing of the transformed image."""
    pdq = [p for p in outcome.probes if p.signal == "pdq"]
    ph = outcome.hashes.get("phash")
    return {
        "pdq": [p for p in pdq if p.name == "pdq/original"],
        "probes": pdq,
        "phash": [Probe("phash", "phash", ph)] if ph is not None else [],
    }


def _distances(outcome: HashOutcome, bank: _Bank, own: int | None) -> dict[str, int | None]:
    """Per method, the gated distance to the photo's own entry (None for unbanked photos), hit or miss."""
    if own is None:
        return {m: None for m in METHODS}
    out: dict[str, int | None] = {}
    for method in ("pdq", "probes"):
        d, _ = _pdq_distances(outcome, bank.pdq, plain=method == "pdq")
        out[method] = int(d[:, own].min()) if len(d) else 256
    ph = outcome.hashes.get("phash")
    out["phash"] = 64 if ph is None else int((_bits([ph])[0] != bank.phash[own]).sum())
    return out


def _judged(a: Assessment, own_id: str | None) -> tuple[bool, bool, str | None]:
    """From assess's answer: whether the own entry caught the photo, whether another entry matched, and the probe
    that matched the own entry (the matcher's pick: nearest, then smallest name)."""
    own = next((m for m in a.matches if m.entry_id == own_id), None)
    caught = own is not None and a.verdict in (Verdict.REMOVE, Verdict.REVIEW)
    return caught, any(m.entry_id != own_id for m in a.matches), own.probe if own is not None else None


def _best_of(rounds: int, *jobs: Callable[[], object]) -> list[float]:
    """Best wall time of each job over ``rounds``, the jobs alternating so that load on the machine hits all."""
    best = [float("inf")] * len(jobs)
    for _ in range(rounds):
        for k, job in enumerate(jobs):
            t0 = time.perf_counter()
            job()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def measure_cost(photos: Sequence[Photo], rounds: int = 5) -> Cost:
    """Seconds to hash every photo plainly (PDQ + dihedral) and with region probes, best of ``rounds``.

    Measured twice: on decoded pixels (the extra work alone against PDQ alone) and from JPEG bytes (what hashing
    a file costs, decode included, which is what a scan pays per item).
    """
    plain = HashEngine(HashConfig(signals=("pdq",), dihedral=True, regions=False))
    probes = HashEngine(HashConfig(signals=("pdq",), dihedral=True, regions=True))
    files = [jpeg_bytes(p.rgb, 90) for p in photos]
    plain.hash_rgb(photos[0].rgb)  # compile and warm both before timing
    probes.hash_rgb(photos[0].rgb)
    plain_s, probes_s = _best_of(
        rounds,
        lambda: [plain.hash_rgb(p.rgb) for p in photos],
        lambda: [probes.hash_rgb(p.rgb) for p in photos],
    )
    plain_f, probes_f = _best_of(
        max(1, rounds // 2),
        lambda: [plain.hash_bytes(b) for b in files],
        lambda: [probes.hash_bytes(b) for b in files],
    )
    with_regions = sum(1 for p in photos if find_regions(p.rgb))
    return Cost(len(photos), plain_s, probes_s, with_regions, plain_f, probes_f)


def run_photos(
    photos: Sequence[Photo],
    *,
    threshold: int = 31,
    phash_threshold: int | None = None,
    transforms: Sequence[str] | None = None,
    seed: int = 0,
    cost: bool = True,
    dropped: Sequence[str] = (),
    progress: Progress | None = None,
) -> RobustnessResult:
    """The benchmark on already-loaded photos (tests use a handful). ``progress(stage, done, total)`` is told
    each transformed photo, so a person sees it move and when it will end (see :data:`Progress`)."""
    tell = progress or (lambda stage, done, total: None)
    if len(photos) < 4:
        raise UserError(f"the robustness benchmark needs at least 4 distinct photos, got {len(photos)}")
    phash_t = get_signal("phash").default_threshold if phash_threshold is None else phash_threshold
    names = list(transforms) if transforms else transform_names()
    chosen = [TRANSFORMS.get(n) for n in names]
    engine = HashEngine(HashConfig(signals=("pdq", "phash"), dihedral=True, regions=True))
    plain_engine = HashEngine(HashConfig(signals=("pdq", "phash"), dihedral=False, regions=False))

    banked_idx = list(range(0, len(photos), 2))
    unbanked = [p.rgb for i, p in enumerate(photos) if i % 2 == 1]
    entries: list[tuple[str, str, str]] = []
    for k, i in enumerate(banked_idx):
        o = plain_engine.hash_rgb(photos[i].rgb)
        entries += [("pdq", o.hashes["pdq"], f"e{k}"), ("phash", o.hashes["phash"], f"e{k}")]
    stand_in = replace(MemoryBank.from_hex("stand-in", entries), thresholds={"pdq": threshold, "phash": phash_t})
    bank = _Bank.from_memory(stand_in)
    matcher = BankMatcher.build([stand_in], quality_gate=QUALITY_GATE)
    policy = Policy()

    rows: list[TransformRow] = []
    comparisons = {m: 0 for m in METHODS}
    steps, step = len(chosen) * len(photos), 0
    tell("transforms", 0, steps)
    for t in chosen:
        stats = {m: MethodStats() for m in METHODS}
        matched_by: dict[str, int] = {}
        outcomes: list[HashOutcome] = []
        for i, photo in enumerate(photos):
            fillers = [u for j, u in enumerate(unbanked) if 2 * j + 1 != i]
            rgb = t.apply(photo.rgb, seed=seed, index=i, fillers=fillers)
            outcomes.append(engine.hash_rgb(rgb))
            step += 1
            tell("transforms", step, steps)
        asked = [_method_probes(o) for o in outcomes]
        # one batch per transform: every photo's three probe sets through assess, as a scan's shard would go
        assessed = assess_many([a[m] for a in asked for m in METHODS], matcher, policy)
        for i, outcome in enumerate(outcomes):
            own = i // 2 if i % 2 == 0 else None
            own_id = f"e{own}" if own is not None else None
            dist = _distances(outcome, bank, own)
            for k, m in enumerate(METHODS):
                caught, false_hit, best = _judged(assessed[i * len(METHODS) + k], own_id)
                s = stats[m]
                s.false_matches += int(false_hit)
                comparisons[m] += len(banked_idx) - (1 if own is not None else 0)
                own_d = dist[m]
                if own_d is not None:
                    s.trials += 1
                    s.distances.append(own_d)
                    if caught:
                        s.hits += 1
                        if best is not None and m == "probes":  # the "caught by" column: which view
                            prefix = best.split("/")[0]
                            matched_by[prefix] = matched_by.get(prefix, 0) + 1
        rows.append(TransformRow(t.name, t.family, stats, matched_by))
    if cost:
        tell("timing", 0, None)
    return RobustnessResult(
        photos=len(photos),
        banked=len(banked_idx),
        dropped=list(dropped),
        threshold=threshold,
        phash_threshold=phash_t,
        rows=rows,
        comparisons=comparisons,
        cost=measure_cost(photos) if cost else None,
    )


def run(
    paths: Sequence[Path],
    out: Path | None = None,
    *,
    threshold: int = 31,
    limit: int | None = None,
    max_side: int = 1024,
    include_skimage: bool = True,
    transforms: Sequence[str] | None = None,
    seed: int = 0,
    cost: bool = True,
    photographs_only: bool = False,
    progress: Progress | None = None,
) -> RobustnessResult:
    """Load benign photos from ``paths`` (plus scikit-image's), run the benchmark, write the table/plot to ``out``.

    ``photographs_only`` leaves out the wallpapers that are renders, drawings or patterns (corpus.GRAPHICS)."""
    files = collect_files(paths)
    if include_skimage:
        files += skimage_files()
    if photographs_only:
        files = [f for f in files if is_photograph(f)]
    if progress is not None:
        progress("loading", 0, None)
    photos, dropped = load_photos(files, max_side=max_side, limit=limit, same_within=2 * threshold)
    result = run_photos(
        photos, threshold=threshold, transforms=transforms, seed=seed, cost=cost, dropped=dropped, progress=progress
    )
    if out is not None:
        from cleanset.evaluation.report import write_report

        write_report(result, out)
    return result
