"""Range checks for the options `match` and `scan` share, in one place so both refuse the same values the same way.

Why check here rather than trust the lower layers: a quality gate of 500 or a review distance of 300 bits is not an
error anywhere below (the matcher simply gates every PDQ probe, the policy simply never reviews), so a typo would
silently change what a scan removes. Each check is a plain function that takes the option's value and returns it,
which is also the shape Typer expects of an option ``callback``; a bad value is a ``UserError`` (one line naming the
option, exit code 2), as every other cleanset usage error is.

Kept import-light: the app imports every command module at start-up, and this runs before any of them works.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleanset.errors import UserError
from cleanset.signals.base import DEFAULT_QUALITY_GATE as DEFAULT_QUALITY_GATE

if TYPE_CHECKING:
    from cleanset.banks.store import BankStore

# The PDQ quality gate's default is one constant (cleanset.signals.base.DEFAULT_QUALITY_GATE), which the scan's,
# the matcher's and assess's defaults name too; tests/docs/test_matching_doc.py holds docs/matching.md equal to it.
QUALITY_MIN, QUALITY_MAX = 0, 100  # PDQ's quality score is a percentage


def quality_gate(value: int) -> int:
    """``--quality-gate``: a PDQ quality, so 0..100. 0 gates nothing; 100 matches almost every PDQ probe exactly
    only, which is allowed but is a choice the docs explain (docs/matching.md)."""
    if not QUALITY_MIN <= value <= QUALITY_MAX:
        raise UserError(f"--quality-gate must be {QUALITY_MIN}..{QUALITY_MAX} (a PDQ quality), got {value}")
    return value


def workers(value: int | None) -> int | None:
    """``--workers``: None means one per core; zero or fewer would start no worker and never finish."""
    if value is not None and value < 1:
        raise UserError(f"--workers must be at least 1, got {value}")
    return value


def location(raw: str | Path) -> Any:
    """A path parameter that may be a URL (``s3://``, ``gs://``, ``hf://``, ``file://``): a local Path, or the URL
    as text; an unsupported scheme is refused by name before anything is created under a mangled name."""
    from cleanset.storage import location as parse

    return parse(raw)


def shown(where: Path | str) -> str:
    """How output names a location: a URL as given, a local path absolute."""
    from cleanset.storage import resolved

    return resolved(where)


def ray_address(executor: str, address: str | None) -> None:
    """``--address``: the Ray cluster to join, handed on as Ray's own ``RAY_ADDRESS`` (which the executor and
    every Ray tool read); only meaningful with ``--executor ray``."""
    if address is None:
        return
    if executor != "ray":
        raise UserError(f"--address is for --executor ray (got --executor {executor})")
    os.environ["RAY_ADDRESS"] = address


def max_perceptual_bits() -> int:
    """The longest perceptual hash any registered signal has (PDQ's 256 today): a distance can never exceed it."""
    from cleanset.signals import get_signal, signal_names
    from cleanset.signals.base import Metric

    return max(get_signal(s).bits for s in signal_names() if get_signal(s).metric is Metric.HAMMING)


def review_above(value: int | None) -> int | None:
    """``--review-above N``: a distance in bits, so 0..the longest perceptual hash. One number covers every
    perceptual signal; a value past a shorter signal's length (pHash: 64) simply never sends that signal to review."""
    if value is None:
        return None
    top = max_perceptual_bits()
    if not 0 <= value <= top:
        raise UserError(f"--review-above must be 0..{top} bits (a Hamming distance), got {value}")
    return value


def threshold(signal: str, value: int) -> int:
    """A match threshold for ``signal``: 0..its bit length for a perceptual signal, 0 for an exact one. The bank
    store applies the same rule to ``bank import --threshold``; this is the same check for a command-line value."""
    from cleanset.banks.store import check_thresholds

    return check_thresholds({signal: value})[signal]


def open_banks(specs: Sequence[str] | None) -> list[Any]:
    """``--bank NAME`` / ``NAME@VERSION`` values as bank snapshots, through the scan's own resolver.

    An unknown name is refused before anything is opened, with the folder that was searched and the banks found
    there: the usual cause is a shell without CLEANSET_HOME (or with another one), not a typo, and the store's
    own message names neither.
    """
    check_banks(specs)
    from cleanset.runs.banks import open_banks as resolve

    return resolve(list(specs or ()))


def check_banks(specs: Sequence[str] | None) -> None:
    """Refuse an unknown bank name as :func:`open_banks` does, for commands that open the banks themselves
    (`rematch`): the same message, naming CLEANSET_HOME, wherever a bank is named."""
    from cleanset.banks.layout import HOME_ENV, home
    from cleanset.banks.store import BankStore

    root = home()
    store = BankStore(root)
    for spec in specs or ():
        name = spec.partition("@")[0]
        if not store.exists(name):  # an invalid name is refused here too, by the store's name check
            raise UserError(f"no bank named {name!r} in {_where(root, HOME_ENV)}; {_known(store)}")


def where_banks() -> str:
    """Where the bank store is, said so that a user sees how to point cleanset elsewhere."""
    from cleanset.banks.layout import HOME_ENV, home

    return _where(home(), HOME_ENV)


def _where(root: Path, env: str) -> str:
    if os.environ.get(env):
        return f"{env}={root}"
    return f"{root} ({env} is not set; that is its default)"


def _known(store: BankStore) -> str:
    names = [n for n in store.layout.bank_names() if store.layout.version_numbers(n)]
    if not names:
        return "there are no banks there yet: add one with `cleanset bank import NAME FILE`"
    return f"banks there: {', '.join(names)}"


def run_sources(run: Path | str) -> list[Any]:
    """The dataset paths a run's scan recorded (absolute, or URLs), for the commands that let ``SOURCE...`` be
    left out.

    A recorded path that is gone is named here rather than left to the source to misreport: the usual cause is a
    dataset moved since the scan, and then the paths must be given."""
    from cleanset.runs.layout import RunDir
    from cleanset.runs.store import RunStore
    from cleanset.storage import is_url

    recorded = RunStore(RunDir.at(run).path).manifest.get("sources") or []
    if not recorded:
        raise UserError(f"{run}: the run records no dataset paths; give them: SOURCE... {run}")
    if any(is_url(p) for p in recorded):
        return list(recorded)  # checked when staged, naming the first that is gone
    paths = [Path(p) for p in recorded]
    gone = [p for p in paths if not p.exists()]
    if gone:
        raise UserError(
            f"{run}: the scanned dataset is no longer at {gone[0]} (moved since the scan?); give its paths: "
            f"SOURCE... {run}"
        )
    return paths
