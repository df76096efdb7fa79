"""No lower layer imports a higher one, and packages of one layer do not import each other.

The order is written once, here, and drawn in ``docs/architecture.md`` (a test holds the two equal). Every import
counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency, and a
cycle hidden in a function body is the one that breaks a refactoring later.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cleanset"

# Lowest first. A name is a package under src/cleanset or a top-level module; "cleanset" is the package root. The
# first layer is one unit (core: small modules that may use each other); in any other layer, names are peers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cleanset", "errors", "registry", "records", "atomic", "threads", "storage", "cluster", "arrays"),
    ("imaging",),
    ("signals",),
    ("banks",),
    ("matching",),
    ("screening",),
    ("assess",),
    ("sources",),
    ("runs",),
    ("pipeline", "results", "evaluation"),
    ("actions",),
    ("api",),
    ("demo", "service", "client"),
    ("gate",),
    ("cli",),
    ("__main__",),
)
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# The package root re-exports the API (PEP 562 ``__getattr__``, so ``import cleanset`` stays light): the one import
# upward allowed, from that one file, of that one module. Nothing below may reach the API through it, since the
# lower layers only ever import ``cleanset.__version__`` from the root.
ROOT_REEXPORTS = {"cleanset.api"}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name: ``cleanset.pipeline.tasks`` -> ``pipeline``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cleanset"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every cleanset import in ``path``; relative imports are resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod == "cleanset":  # ``from cleanset import api``: the names may be modules
                out += [(node.lineno, f"cleanset.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return [(line, m) for line, m in out if m == "cleanset" or m.startswith("cleanset.")]


def _units() -> set[str]:
    found = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    found |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    return found


def test_every_package_has_a_layer() -> None:
    """A new package or top-level module must be placed in the order, not slip past the check."""
    missing = sorted(u for u in _units() if u not in LEVEL and u != "__version__")
    assert not missing, f"add these to LAYERS (and docs/architecture.md): {missing}"


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        me = _unit(_module_name(path))
        for line, target in _imports(path):
            if path == SRC / "__init__.py" and target in ROOT_REEXPORTS:
                continue
            other = _unit(target)
            if other == me or other == "__version__" or LEVEL.get(other) == LEVEL[me] == 0:
                continue
            if other not in LEVEL:
                other = "cleanset"  # ``from cleanset import __version__`` and the like
            if LEVEL[other] >= LEVEL[me]:
                rel = path.relative_to(ROOT)
                wrong.append(f"{rel}:{line}: {me} (layer {LEVEL[me]}) imports {target} (layer {LEVEL[other]})")
    assert not wrong, "\n".join(wrong)


def test_architecture_doc_draws_the_same_order() -> None:
    """The picture in docs/architecture.md lists the layers in this order, one line per layer."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layers -->\n```\n(.*?)```", text, re.S)
    assert block is not None, "docs/architecture.md lost its layer block"
    drawn = [tuple(re.findall(r"[\w]+", line.split(":")[0])) for line in block.group(1).strip().splitlines()]
    assert list(reversed(drawn)) == [tuple(n for n in layer) for layer in LAYERS]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("pipeline/tasks.py", "cleanset.pipeline.tasks"), ("assess/__init__.py", "cleanset.assess")],
)
def test_module_names(path: str, expected: str) -> None:
    assert _module_name(SRC / path) == expected
