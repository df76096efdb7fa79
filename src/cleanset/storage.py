"""Where cleanset reads and writes when a location is a URL: the one seam to object storage (fsspec).

Sources, run folders and cleaned output accept ``s3://``, ``gs://``, ``hf://`` and ``file://`` URLs beside local
paths. Everything above this module keeps working on local files, because the readers (tarfile, Arrow, Pillow) and
the atomic commit (temp, fsync, rename) are local-file things; this module moves files between a URL and a local
**mirror** under the node's cache, and nothing else:

- a remote *source* is staged into the mirror before it is opened (a file whose size and version (ETag,
  generation, blob id, mtime) did not change is not fetched again), so shard ids, keys and digests are the ones a
  local copy of the same layout gives;
- a remote *run folder* has a local working copy; each shard's items are committed there atomically, then pushed
  **write-then-marker**: the items object, then the ledger entry, and only then does the working copy's entry move
  in. Object stores have no rename, but a PUT is all-or-nothing per object, so a ledger entry on the store always
  points at complete items, and the store is the only source of truth (``RunDir.pull``: a working copy's entry,
  rematch revision or clean record that the store lacks or holds otherwise is dropped or replaced when the run is
  reopened);
- a remote *cleaned output* is built in a staging folder under the cache, checked, then uploaded file by file
  with the completion marker last; a folder without the marker is not a finished copy.

Credentials and endpoints come from the usual places (AWS_* variables, ``~/.aws``, gcloud, ``HF_TOKEN``) and from
fsspec's own ``FSSPEC_<PROTOCOL>_<OPTION>`` variables (``FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:9000`` for MinIO
or moto), which the local executor's worker processes inherit; Ray workers get only the options that say where a
store is, never a credential (``cluster.forwarded_env``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cleanset.atomic import atomic_output, private_dir
from cleanset.errors import UserError

# ``scheme://`` at the start: a URL, not a path (``Path("s3://b/k")`` would silently become ``s3:/b/k``).
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
SUPPORTED = ("s3", "s3a", "gs", "gcs", "hf", "file", "memory")
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "hf": "hf"}
CACHE_ENV = "CLEANSET_CACHE"

Location = Path | str  # a local path, or a URL kept as text


_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """``a{00..02}b`` -> a00b a01b a02b (zero padding kept), ``{x,y}`` -> both; nested and repeated groups work.

    Here rather than in the sources because URLs are expanded too: people copy these patterns from img2dataset's
    and webdataset's docs (``s3://b/{00000..00127}.tar``), and many shells or job launchers pass them through."""
    ranges, lists = _RANGE.search(pattern), _LIST.search(pattern)
    m = min((x for x in (ranges, lists) if x is not None), key=lambda x: x.start(), default=None)
    if m is None:
        return [pattern]
    if m is ranges:
        lo, hi = m.group(1), m.group(2)
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        a, b = int(lo), int(hi)
        if b < a:
            raise UserError(f"brace range {m.group(0)} in {pattern!r} counts down")
        alternatives = [str(i).zfill(width) for i in range(a, b + 1)]
    else:
        alternatives = m.group(1).split(",")
    out: list[str] = []
    for alt in alternatives:  # left to right, as the shell expands
        out.extend(expand_braces(pattern[: m.start()] + alt + pattern[m.end() :]))
    return out


def is_url(raw: object) -> bool:
    return isinstance(raw, str) and URL.match(raw) is not None


def location(raw: str | Path) -> Location:
    """The user's text as a local Path, or as a URL (text) for a supported store; ``file://`` is a local Path.

    Refuses an unsupported scheme by name here, before anything is created under a mangled local name."""
    if isinstance(raw, Path) or not is_url(raw):
        return Path(raw)
    scheme = raw.split("://", 1)[0].lower()
    if scheme == "file":
        return Path(unquote(urlsplit(raw).path))
    if scheme not in SUPPORTED:
        raise UserError(f"{raw}: {scheme}:// is not a supported location (use {', '.join(SUPPORTED[:5])}, or a path)")
    return raw.rstrip("/")


def resolved(loc: Location | str) -> str:
    """How a location is recorded (manifests, plans): a URL as written, a local path absolute."""
    if is_url(loc):
        return str(location(loc)) if str(loc).lower().startswith("file://") else str(loc).rstrip("/")
    return str(Path(loc).resolve())


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it); a missing driver is an ImportError naming the extra to install."""
    import fsspec.core

    scheme = url.split("://", 1)[0].lower()
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as e:
        extra = EXTRAS.get(scheme, scheme)
        raise ImportError(f"{scheme}:// needs the object-storage driver: pip install 'cleanset[{extra}]' ({e})") from e
    return fs, path


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])


def _cache_base() -> Path:
    """``$CLEANSET_CACHE`` or ``~/.cache/cleanset``: the mirror and the staging folder live under it."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cleanset")


def cache_root() -> Path:
    """The node's mirror of remote locations: ``$CLEANSET_CACHE`` or ``~/.cache/cleanset``; owner-only, since it
    holds dataset bytes and run results."""
    return private_dir(_cache_base() / "storage")


def is_working_copy(path: Path | str) -> bool:
    """Whether ``path`` lies in this node's mirror of a remote run: what is written there is not on the store, and
    the next pull drops it, so a step that writes a run (a neighbour pass) or vouches for one (attest) refuses it."""
    root = _cache_base() / "storage"
    try:
        return Path(path).resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def staging_root() -> Path:
    """Where a remote cleaned output is built before its upload: under the cache (``$CLEANSET_CACHE``), chosen
    for size by whoever runs cleanset, not the system's temporary folder (often a small tmpfs)."""
    return private_dir(_cache_base() / "staging")


def same_store_key(url: str) -> str:
    """``url`` as one spelling per object (``s3a://`` is ``s3://``, ``gcs://`` is ``gs://``), ending in ``/``, so
    two locations compare as prefixes of each other."""
    scheme, rest = url.split("://", 1)
    scheme = {"s3a": "s3", "gcs": "gs"}.get(scheme.lower(), scheme.lower())
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    return f"{scheme}://{'/'.join(parts)}/"


def overlaps(a: str, b: str) -> bool:
    """Whether one URL is at or below the other."""
    ka, kb = same_store_key(a), same_store_key(b)
    return ka.startswith(kb) or kb.startswith(ka)


def mirror_path(url: str) -> Path:
    """Where ``url`` lives in the local mirror: ``<cache>/<scheme>/<bucket>/<key>``, so relative layout (and so
    shard ids) is the one the store has."""
    scheme, rest = url.split("://", 1)
    parts = [p for p in rest.split("/") if p not in ("", ".", "..")]
    if not parts:
        raise UserError(f"{url}: names no bucket or folder")
    return cache_root() / scheme.lower() / Path(*parts)


def _stamp(info: dict[str, Any]) -> str:
    """What says a remote file changed: size plus whatever version the store reports (S3's ETag, GCS's generation,
    the Hub's ``blob_id`` and ``lfs`` digest, memory's ``created``, a local file's mtime). Missing one would leave a
    changed file of the same size unfetched, and the scan reading the old bytes."""
    keys = (
        "size",
        "ETag",
        "etag",
        "LastModified",
        "mtime",
        "last_modified",
        "md5Hash",
        "generation",
        "blob_id",
        "lfs",
        "created",
    )
    return hashlib.sha256(repr([(k, str(info.get(k))) for k in keys]).encode()).hexdigest()[:32]


def _fetch(fs: Any, rpath: str, info: dict[str, Any], local: Path) -> None:
    """Download one file into the mirror unless the same version is there already (a stamp file beside it)."""
    stamp = local.parent / f".{local.name}.stamp"
    want = _stamp(info)
    if local.is_file() and stamp.is_file() and stamp.read_text() == want:
        return
    private_dir(local.parent)
    with atomic_output(local) as tmp:
        fs.get_file(rpath, str(tmp))
    with atomic_output(stamp) as tmp:
        tmp.write_text(want)


def _prune(local: Path, wanted: set[Path]) -> None:
    """Remove what the store no longer holds from a mirrored folder: a shard deleted there must not be scanned
    here from an earlier staging."""
    for p in sorted(local.rglob("*"), reverse=True):
        if p.is_file() and p not in wanted and ".tmp-" not in p.name:
            p.unlink()


def stage(urls: Sequence[str]) -> list[Path]:
    """Local mirror paths of remote files or folders (brace patterns expanded), fetched or refreshed.

    A folder is mirrored whole (every file below it; the sources' own listing then decides what is a shard), so a
    staged dataset reads exactly as a local copy of it would. Fails naming the first URL that names nothing."""
    out: list[Path] = []
    for raw in urls:
        for url in expand_braces(str(raw)):
            fs, path = _fresh(url)
            try:
                info = fs.info(path)
            except FileNotFoundError:
                raise UserError(f"source path does not exist: {url}") from None
            local = mirror_path(url)
            if info.get("type") == "directory":
                found = fs.find(path, detail=True)
                base = path.rstrip("/") + "/"
                wanted: set[Path] = set()
                for rpath, finfo in sorted(found.items()):
                    if finfo.get("type") == "directory" or not rpath.startswith(base):
                        continue
                    target = local / rpath[len(base) :]
                    _fetch(fs, rpath, finfo, target)
                    wanted |= {target, target.parent / f".{target.name}.stamp"}
                private_dir(local)
                _prune(local, wanted)
            else:
                _fetch(fs, path, info, local)
            out.append(local)
    return out


def local_paths(paths: Iterable[Location | str]) -> list[Path]:
    """Sources as local paths: URLs staged into the mirror, ``file://`` and plain paths as they are."""
    items = list(paths)
    remote = [str(p) for p in items if is_url(p) and isinstance(location(p), str)]
    staged = iter(stage(remote)) if remote else iter(())
    return [next(staged) if is_url(p) and isinstance(location(p), str) else Path(location(p)) for p in items]


def _fresh(url: str) -> tuple[Any, str]:
    """The filesystem with its listing cache dropped: another process (a worker, a killed scan) may have written
    since this one last listed, and the ledger on the store is only the truth when it is read fresh."""
    fs, path = filesystem(url)
    fs.invalidate_cache()
    return fs, path


def exists(url: str) -> bool:
    fs, path = _fresh(url)
    return bool(fs.exists(path))


def is_empty(url: str) -> bool:
    """True when nothing is stored at or below ``url`` (object stores have no empty folders)."""
    fs, path = _fresh(url)
    if not fs.exists(path):
        return True
    if fs.isfile(path):
        return False
    return not fs.find(path)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    data: bytes = fs.cat_file(path)
    return data


def read_many(urls: Sequence[str]) -> list[bytes]:
    """The contents of many objects of one store, fetched concurrently where the driver can (s3fs, gcsfs): a run's
    ledger on reopening is one request per shard, and thousands of them one after another would take minutes."""
    if not urls:
        return []
    fs, _ = filesystem(urls[0])
    paths = [filesystem(u)[1] for u in urls]
    got: dict[str, bytes] = fs.cat(paths, on_error="raise")
    return [got[p] for p in paths]


def upload(local: Path, url: str) -> None:
    """One file to one object. A PUT is all-or-nothing per object, which is what write-then-marker builds on."""
    fs, path = filesystem(url)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.makedirs(parent, exist_ok=True)  # a no-op on object stores, needed for file:// and memory://
    fs.put_file(str(local), path)


def download(url: str, local: Path) -> None:
    """One object to a local file, atomically (a half-fetched file is never under its final name)."""
    fs, path = filesystem(url)
    private_dir(local.parent)
    with atomic_output(local) as tmp:
        fs.get_file(path, str(tmp))


def list_names(url: str) -> list[str]:
    """Names of the files directly under ``url`` (none when it does not exist)."""
    fs, path = _fresh(url)
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    return sorted(str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") != "directory")


def upload_tree(local: Path, url: str, last: Sequence[str] = ()) -> int:
    """Every file under ``local`` to ``url``, keeping relative paths; the names in ``last`` go after all others
    (a completion marker). Returns the number of files uploaded."""
    files = sorted(p for p in local.rglob("*") if p.is_file())
    tail = [local / n for n in last if (local / n).is_file()]
    body = [p for p in files if p not in tail]
    for p in [*body, *tail]:
        upload(p, join(url, p.relative_to(local).as_posix()))
    return len(files)
