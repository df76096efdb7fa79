"""The screening stage of a scan: classifier scores, caption rules and dataset scores, added to each item's scores
before ``cleanset.assess`` decides.

Why a stage object rather than calls scattered in the scan: a scan hands each item's decoded pixels over while it
hashes (``pixel_hook``), and the classifiers want them in batches, so the stage queues the prepared inputs and
scores a batch when it is full (``flush`` before the batch is assessed). What it writes is plain numbers in the
item's ``scores`` (``classifier.<name>``, ``text.<category>``, ``punsafe``...) and the labels of the term lists that
matched, so the policy, rematch and the report read screening exactly as they read anything else.

``ScreenConfig`` is the stage as picklable data (it travels in the scan plan to workers that build their own);
``ScreenConfig.build()`` loads models and lists, failing before the first item is read when one is missing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cleanset.screening.classifier import Classifier, get_classifier
from cleanset.screening.scores import DEFAULT_SCORE_COLUMNS, read_scores
from cleanset.screening.text import TermList, screen_text

__all__ = ["NOT_CLASSIFIED", "Pending", "ScreenConfig", "Screening", "caption_of"]

DEFAULT_CLASSIFIERS: tuple[str, ...] = ("open_nsfw",)
# The note an item gets when screening has classifiers but the item has no pixels (a URL metadata row): the report
# counts these items so that nobody reads "no classifier fired" as "classified and clean".
NOT_CLASSIFIED = "not classified: no pixels"


@dataclass(frozen=True)
class ScreenConfig:
    """What to screen with. ``classifiers``: registered names or model config paths; ``term_lists``: imported
    lists (``NAME[@VERSION]``) used with the shipped defaults unless ``default_terms`` is off; ``score_columns``:
    dataset columns read as scores (default LAION's ``punsafe`` and ``pwatermark``, where present)."""

    classifiers: tuple[str, ...] = DEFAULT_CLASSIFIERS
    term_lists: tuple[str, ...] = ()
    default_terms: bool = True
    score_columns: tuple[str, ...] = DEFAULT_SCORE_COLUMNS
    batch_size: int = 8  # pictures per inference; see Classifier.batch_size

    def build(self) -> Screening:
        from cleanset.screening.terms import resolve_lists

        classifiers = [get_classifier(ref) for ref in self.classifiers]
        for c in classifiers:
            c.batch_size = self.batch_size
        lists = resolve_lists(list(self.term_lists), defaults=self.default_terms)
        return Screening(self, classifiers, lists)

    def pinned(self) -> ScreenConfig:
        """This config with every imported term list named by the version it resolves to now (``NAME@VERSION``),
        so workers, a resumed scan and the manifest read the same list even if a new version is imported."""
        from dataclasses import replace

        from cleanset.screening.terms import resolve_lists

        if not self.term_lists:
            return self
        lists = resolve_lists(list(self.term_lists), defaults=False)
        return replace(self, term_lists=tuple(f"{tl.name}@{tl.version}" for tl in lists))

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifiers": list(self.classifiers),
            "term_lists": list(self.term_lists),
            "default_terms": self.default_terms,
            "score_columns": list(self.score_columns),
        }


@dataclass
class Pending:
    """One item waiting for its classifier scores: where to write them, and its prepared inputs per classifier."""

    scores: dict[str, float]
    inputs: list[list[np.ndarray]]


def caption_of(meta: Mapping[str, Any]) -> str | None:
    """The item's caption: what the source read as its caption (``TEXT``/``caption`` column, ``.txt`` sidecar), else
    the ``caption`` of its JSON sidecar."""
    caption = meta.get("caption")
    if isinstance(caption, str):
        return caption
    side = meta.get("json")
    if isinstance(side, Mapping) and isinstance(side.get("caption"), str):
        return str(side["caption"])
    return None


@dataclass
class Screening:
    config: ScreenConfig
    classifiers: list[Classifier]
    lists: list[TermList]
    _queue: list[Pending] = field(default_factory=list)
    _queued_images: int = 0
    _unscored: list[Pending] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """What the manifest records: the classifiers (with model digests) and the term lists by label."""
        return {
            **self.config.to_dict(),
            "models": [c.describe() for c in self.classifiers],
            "lists": [tl.label for tl in self.lists],
        }

    def pixel_hook(self) -> tuple[Callable[[np.ndarray], None] | None, list[list[np.ndarray]]]:
        """A hook for the hashing engine and the list it fills: per classifier, the prepared input of every frame
        the engine decoded. Preparing at once keeps only the small model input, never a frame, alive. No hook
        without a classifier: the engine then decodes only what its own signals need."""
        inputs: list[list[np.ndarray]] = [[] for _ in self.classifiers]
        if not self.classifiers:
            return None, inputs

        def hook(rgb: np.ndarray) -> None:
            for i, c in enumerate(self.classifiers):
                inputs[i].append(c.prepare(rgb))

        return hook, inputs

    def text_and_scores(self, meta: Mapping[str, Any]) -> tuple[dict[str, float], list[str], list[str]]:
        """Caption rules and dataset scores of one item: (scores, list labels that matched, notes)."""
        result = screen_text(caption_of(meta), self.lists)
        scores, notes = read_scores(meta, self.config.score_columns)
        scores.update(result.scores)
        return scores, result.labels, notes

    def queue(self, scores: dict[str, float], inputs: list[list[np.ndarray]]) -> None:
        """Classify ``inputs`` (from ``pixel_hook``) with the next batch; their scores land in ``scores``."""
        if not any(inputs):
            return
        with self._lock:
            self._queue.append(Pending(scores, inputs))
            self._queued_images += max(len(x) for x in inputs)
            full = self._queued_images >= self.config.batch_size
        if full:
            self._unscored.extend(self.flush())

    def flush(self) -> list[Pending]:
        """Score everything queued; returns the items that did not get every classifier's score (also those a
        batch flushed from ``queue`` left out), which the caller must fail: kept without a score would be kept
        unscreened. An item's score is the highest over its frames and image parts: a picture hidden behind a
        harmless first frame counts as much as a first frame."""
        with self._lock:
            queue, self._queue, self._queued_images = self._queue, [], 0
            missed, self._unscored = self._unscored, []
        return missed + self._score(queue)

    def classify(self, scores: dict[str, float], inputs: list[list[np.ndarray]]) -> list[str]:
        """Score one item's own ``inputs`` now, into ``scores``, sharing nothing with other callers (the API's
        threads); returns the classifiers that gave no score, which fails the item."""
        if not any(inputs):
            return []
        return self.missing(self._score([Pending(scores, inputs)]), scores)

    def missing(self, unscored: Sequence[Pending], scores: Mapping[str, float]) -> list[str]:
        """The classifiers whose score ``scores`` lacks, when its item is among ``unscored`` (from ``flush``)."""
        if not any(p.scores is scores for p in unscored):
            return []
        return [c.score for c in self.classifiers if c.score not in scores]

    def _score(self, queue: list[Pending]) -> list[Pending]:
        if not queue:
            return []
        for i, c in enumerate(self.classifiers):
            owners = [k for k, p in enumerate(queue) for _ in p.inputs[i]]
            flat = [x for p in queue for x in p.inputs[i]]
            if not flat:
                continue
            values = np.concatenate(
                [c.score_prepared(np.stack(flat[j : j + c.batch_size])) for j in range(0, len(flat), c.batch_size)]
            )
            best: dict[int, float] = {}
            for k, v in zip(owners, values.tolist(), strict=True):
                best[k] = combine_scores(best.get(k), v)
            for k, v in best.items():
                queue[k].scores[c.score] = float(v)
        return [
            p for p in queue if any(p.inputs[i] and c.score not in p.scores for i, c in enumerate(self.classifiers))
        ]


def combine_scores(prev: float | None, value: float) -> float:
    """One item's score from its frames or parts: the highest counts, but one that is NaN or infinite makes the
    item's score so, and the policy sends it to review. ``max`` alone would let a later finite frame hide it."""
    if prev is None:
        return value
    if not math.isfinite(prev):
        return prev
    return value if not math.isfinite(value) else max(prev, value)
