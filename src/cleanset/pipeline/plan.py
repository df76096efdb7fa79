"""``ScanPlan``: everything a worker needs to build its own state, as plain picklable data.

The local executor forks after the parent has built the engine and the matcher, so its workers share them
copy-on-write and never look at the plan; that is an optimisation of one executor. Any executor whose workers do
not share the parent's memory (a spawned process, a Ray task on another host) is handed the plan instead and calls
``build_context()``. So the plan names things rather than holding them: the source by format, paths and options;
each bank by name, version and the content digest it had when the scan was planned (a worker that finds other bytes
refuses to scan rather than match against a list the manifest does not name); the engine by its configuration; the
policy by value. Bank values never travel in it, only where to read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanset import storage
from cleanset.assess import Policy
from cleanset.errors import UserError

if TYPE_CHECKING:
    from cleanset.pipeline.tasks import ScanContext
    from cleanset.signals.engine import HashConfig


@dataclass(frozen=True)
class SourceSpec:
    """How to open the dataset: a registered format name, its paths and its constructor options."""

    format: str
    paths: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def open(self) -> Any:
        from cleanset.sources import open_source

        options = {k: Path(v) if k == "images" else v for k, v in self.options.items()}
        return open_source(list(self.paths), self.format, **options)  # URLs are staged by open_source


@dataclass(frozen=True)
class BankRef:
    """A bank version by name, with the digest it must still have; ``directory`` when it was opened from one."""

    name: str
    version: int
    digest: str
    directory: str | None = None

    @classmethod
    def of(cls, snapshot: Any) -> BankRef:
        directory = getattr(snapshot, "directory", None)
        return cls(snapshot.name, int(snapshot.version), snapshot.digest, str(directory) if directory else None)

    def open(self) -> Any:
        if self.directory is not None:
            from cleanset.banks.snapshot import StoredBank

            snap: Any = StoredBank(Path(self.directory))
        else:
            from cleanset.banks.store import BankStore

            snap = BankStore.default().open(self.name, self.version)
        if snap.digest != self.digest:
            raise UserError(
                f"bank {self.name} v{self.version} has digest {snap.digest}, not the {self.digest} this scan was "
                "planned with; rerun the scan"
            )
        return snap


@dataclass(frozen=True)
class ScanPlan:
    """A scan's configuration as data: picklable, built once by ``scan.prepare``, recorded on the context."""

    source: SourceSpec
    banks: tuple[BankRef, ...]
    engine: HashConfig
    policy: Policy
    quality_gate: int
    screen: Any = None  # ``screening.stage.ScreenConfig`` or None: screening, as data a worker builds it from

    @classmethod
    def of(
        cls,
        source: Any,
        paths: Sequence[Path | str],
        options: Mapping[str, Any],
        snapshots: Sequence[Any],
        engine: HashConfig,
        policy: Policy,
        quality_gate: int,
        screen: Any = None,
    ) -> ScanPlan:
        opts = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
        return cls(
            SourceSpec(source.name, tuple(storage.resolved(p) for p in paths), opts),
            tuple(BankRef.of(s) for s in snapshots),
            engine,
            policy,
            quality_gate,
            screen.pinned() if screen is not None else None,  # term lists as NAME@VERSION: workers read the same
        )

    def build_context(self, matcher: Any = None, url_plan: Any = None) -> ScanContext:
        """What a worker scans with: the source reopened, banks reopened and checked by digest, engine and matcher
        built. Costs what ``prepare`` cost, so a worker does it once, not per shard.

        ``matcher`` (with its ``url_plan``): the one the driver built from these very banks, handed over by an
        executor that shares memory another way (Ray's object store: the indexes' arrays, once per node); the
        banks are then not reopened here."""
        from cleanset.matching.matcher import BankMatcher
        from cleanset.pipeline.tasks import ScanContext
        from cleanset.signals.engine import HashEngine

        snaps = [b.open() for b in self.banks] if matcher is None else []
        if matcher is None:
            matcher = BankMatcher.build(snaps, quality_gate=self.quality_gate)
        return ScanContext(
            url_plan=url_plan,
            source=self.source.open(),
            engine=HashEngine(self.engine),
            matcher=matcher,
            policy=self.policy,
            snapshots=snaps,
            plan=self,
            screen=self.screen.build() if self.screen is not None else None,
            url_fast_path=self.screen is None,
        )
