"""What an executor tells whoever shows a scan: typed events, one class per kind.

Typed so a consumer (the CLI's progress bar, the demo, a Ray driver) is checked by mypy against what executors send,
and a new executor cannot invent a kind nobody listens to. Each class still carries ``kind`` as a string, so a
consumer may switch on it without importing the classes, and events pickle (a remote executor sends them back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal


@dataclass(frozen=True, slots=True)
class Progress:
    """Items of one shard finished since the last report; negative when a failed attempt's work is taken back."""

    shard: str
    items: int = 0
    failed: int = 0
    kind: ClassVar[Literal["progress"]] = "progress"


@dataclass(frozen=True, slots=True)
class ShardDone:
    """A shard committed (its ledger entry is on disk); ``entry`` is that ledger entry."""

    shard: str
    entry: dict[str, Any]
    kind: ClassVar[Literal["shard"]] = "shard"


@dataclass(frozen=True, slots=True)
class Retry:
    """An attempt failed and the shard goes round once more (``attempt`` is the one that failed, from 1)."""

    shard: str
    reason: str
    attempt: int = 1
    kind: ClassVar[Literal["retry"]] = "retry"


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The last attempt failed: the shard is committed with every item failed, for ``reason``."""

    shard: str
    reason: str
    kind: ClassVar[Literal["gave_up"]] = "gave_up"


Event = Progress | ShardDone | Retry | GaveUp
EventFn = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class RetryRule:
    """The one retry and give-up rule every executor applies, so results never depend on where shards ran.

    A shard whose attempt fails (a Python error, or its worker dying: a decoder's segfault, an OOM kill) is tried
    again until ``attempts`` attempts have failed; then it is given up: committed with all its items ``failed`` for
    the last reason plus "(after N attempts)", so the items are counted and the cleaned dataset leaves them out.
    """

    attempts: int = 2  # the first try and one retry

    def after_failure(self, shard: str, attempt: int, reason: str) -> Retry | GaveUp:
        """What follows failed attempt number ``attempt`` (from 1): the event says it, and its type decides."""
        if attempt < self.attempts:
            return Retry(shard, reason, attempt)
        return GaveUp(shard, f"{reason} (after {self.attempts} attempts)")


RETRY_RULE = RetryRule()
