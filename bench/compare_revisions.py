"""Before and after in one run: the hashing, scan and rematch benches of a base revision and of the working tree,
run alternately (base, tree, base, tree, ...), with the ratio of each figure printed.

Why alternately, in one run: on a shared machine the load moves by more than the 5 % this checks for, and two
figures taken minutes apart compare the load as much as the code. Interleaving gives each pair the same spell.

The base is materialised with ``git archive REV | tar -x`` into a folder under the temporary directory (never a
checkout or worktree of this repository, whose working tree may hold uncommitted work), and each revision runs its
own bench scripts with its own ``src`` first on ``PYTHONPATH``, in this same virtual environment: nothing is
installed. Each bench prints its figures as it always does; this script reads the lines it knows and prints, per
figure, the base and tree values (median over the rounds) and tree/base with the median of the per-round ratios.
A throughput figure passes when tree/base >= 0.95.

Base revision: ``5b3703f`` ("README: a walk through the real flow on the demo's data ..."), the commit just before
``8662c13``, which is the first to carry issue 12's code (the shared luma pass, ``pdq_kernel.scan_shared``; commit
subjects in this history do not always name what a commit holds, so the choice is by content: no commit before
it touches the assessment core, runs layer, registries, API or the shared pass).

    .venv/bin/python bench/compare_revisions.py [--base REV] [--rounds 2] [--bench hash scan rematch]
        [--warmup 1] [--hash-args "--limit 80"] [--scan-args "--quick --part a"] [--rematch-args "--items 400"]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "5b3703f"
TOLERANCE = 0.95  # tree/base of a throughput figure must stay at or above this


@dataclass(frozen=True)
class Bench:
    script: str
    args: str
    figures: Callable[[str], dict[str, float]]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def hash_figures(out: str) -> dict[str, float]:
    """images/s (thread CPU) of the cleanset methods, and each over the reference path measured in the same run
    (which is the same code in both revisions, so the quotient cancels most of the machine's load)."""
    ips: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"^(decode only|reference|cleanset pdq|cleanset all)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", line)
        if m:
            ips[m.group(1)] = float(m.group(2))
    figs = {f"{n} images/s": v for n, v in ips.items() if n.startswith("cleanset")}
    if "reference" in ips:
        figs.update({f"{n} / reference": v / ips["reference"] for n, v in ips.items() if n.startswith("cleanset")})
    if "decode only" in ips:
        figs.update({f"{n} / decode only": v / ips["decode only"] for n, v in ips.items() if n.startswith("cleanset")})
    return figs


def scan_figures(out: str) -> dict[str, float]:
    figs: dict[str, float] = {}
    m = re.search(r"single-core hashing \(HashEngine.*?:\s+([\d.]+) items per CPU-s", out)
    if m:
        figs["single-core hashing items/CPU-s"] = float(m.group(1))
    m = re.search(r"end-to-end scan, \d+ workers:\s+([\d.]+) items/s wall, ([\d.]+) items per CPU-s", out)
    if m:
        figs["scan items/s wall"] = float(m.group(1))
        figs["scan items/CPU-s"] = float(m.group(2))
    m = re.search(r"rows/s per core: ([\d,]+) \(rows per CPU-s\)", out)
    if m:
        figs["metadata rows/CPU-s"] = _number(m.group(1))
    return figs


def rematch_figures(out: str) -> dict[str, float]:
    figs: dict[str, float] = {}
    for label, name in (
        (r"scan\s*", "scan items/s"),
        (r"rematch\s*", "rematch items/s"),
        (r"rematch --full", "rematch --full items/s"),
        (r"rematch x\d+\s*", "rematch tiled items/s"),
    ):
        m = re.search(rf"^{label}:.*?=\s*([\d.]+) items/s", out, re.MULTILINE)
        if m:
            figs[name] = float(m.group(1))
    return figs


BENCHES = {
    "hash": Bench("bench/hash_throughput.py", "--limit 80", hash_figures),
    "scan": Bench("bench/scan_throughput.py", "--quick --part a --photos 300 --hash-sample 60", scan_figures),
    "rematch": Bench("bench/rematch.py", "--items 400 --tile 10", rematch_figures),
}


def materialise(rev: str) -> Path:
    """The tree of ``rev`` under the temporary directory (reused when already there): ``git archive | tar -x``."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"cleanset-base-{sha[:12]}"
    marker = dest / ".materialised"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    marker.write_text(sha + "\n")
    return dest


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def check_import(tree: Path) -> None:
    """Refuse to compare when ``import cleanset`` would not load ``tree``'s own code."""
    got = subprocess.run(
        [sys.executable, "-c", "import cleanset, sys; sys.stdout.write(cleanset.__file__)"],
        env=environment(tree),
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if not Path(got).resolve().is_relative_to((tree / "src").resolve()):
        raise SystemExit(f"import cleanset in {tree} loads {got}, not the tree's own src")


def run_bench(tree: Path, bench: Bench, args: str) -> str:
    cmd = [sys.executable, str(tree / bench.script), *shlex.split(args)]
    done = subprocess.run(cmd, env=environment(tree), cwd=tree, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a bench's own required figure failed; its figures still count
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"{bench.script} in {tree} exited with {done.returncode}")
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=DEFAULT_BASE, help=f"base revision (default {DEFAULT_BASE})")
    ap.add_argument("--rounds", type=int, default=2, help="base/tree pairs per bench")
    ap.add_argument(
        "--warmup", type=int, default=1, help="discarded runs per tree and bench first (numba compiles into its cache)"
    )
    ap.add_argument("--bench", nargs="+", choices=tuple(BENCHES), default=list(BENCHES))
    for name, b in BENCHES.items():
        ap.add_argument(f"--{name}-args", default=b.args, help=f"arguments of {b.script} (default: {b.args!r})")
    args = ap.parse_args()

    base = materialise(args.base)
    for tree in (base, ROOT):
        check_import(tree)
    print(f"base {args.base} in {base}; tree {ROOT} (working tree, uncommitted changes included)")
    print(
        f"rounds {args.rounds} (base, tree alternately) after {args.warmup} discarded run(s) each; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    ok = True
    for name in args.bench:
        bench = BENCHES[name]
        bench_args = getattr(args, f"{name}_args")
        runs: dict[str, list[dict[str, float]]] = {"base": [], "tree": []}
        for _ in range(args.warmup):
            for tree in (base, ROOT):
                run_bench(tree, bench, bench_args)
        for _ in range(args.rounds):
            for label, tree in (("base", base), ("tree", ROOT)):
                runs[label].append(bench.figures(run_bench(tree, bench, bench_args)))
        print()
        print(f"{bench.script} {bench_args}")
        print(f"  {'figure':<34}{'base':>12}{'tree':>12}{'tree/base':>11}  per round")
        for fig in runs["base"][0]:
            if not all(fig in r for r in runs["base"] + runs["tree"]):
                continue
            base_value = statistics.median(r[fig] for r in runs["base"])
            tree_value = statistics.median(r[fig] for r in runs["tree"])
            per_round = [tr[fig] / br[fig] for br, tr in zip(runs["base"], runs["tree"], strict=True)]
            ratio = statistics.median(per_round)
            verdict = "ok" if ratio >= TOLERANCE else "SLOWER"
            ok &= ratio >= TOLERANCE
            rounds = " ".join(f"{r:.3f}" for r in per_round)
            print(f"  {fig:<34}{base_value:>12.2f}{tree_value:>12.2f}{ratio:>11.3f}  {rounds}  {verdict}")
    print()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"every figure within 5 % or better: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
