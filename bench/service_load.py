"""`cleanset serve` under load on loopback: hash lookups against a 10-million-entry PDQ bank, 1 MP image checks
beside the in-process rate of the same work, a reload under load, and the server's memory from start to end.

One run prints (issue 15, section 5):

- hash lookups: 32 clients for ``--seconds`` (default 60) against a bank of ``--entries`` random PDQ hashes, a tenth
  of the queries within distance 31 of an entry: requests/s, p50 and p99 latency, errors (must be 0), and the
  share of near queries that matched (must be all). Driven by ``wrk`` with a generated Lua script when wrk is
  installed (Debian's package), by a Python asyncio keep-alive generator otherwise. The baseline in the same run
  is a bare async FastAPI endpoint with a key check, served the same way and driven the same way: the service's
  figure is printed as a ratio of it (the issue: the service's own work may take at most half of it).
- image checks: ``--images`` generated 1 MP JPEGs (benign: smooth random colour fields with noise) sent by 32
  clients for ``--image-seconds``; requests/s next to the in-process rate of ``api.check_bytes`` on the same images
  with as many threads as the service gives image checks. Overhead target: at most 30 %.
- reload: a new version of the bank imported while 32 clients keep asking: seconds until the service has staged
  its index (built beside the live one), then seconds from ``POST /v1/banks/{name}/reload`` until it is live
  (target: under 5 s), and errors during all of it (must be 0).
- memory: the server's RSS at start and at end (after every phase and the reload): no growth beyond noise.

The 10 M bank is written once to ``--cache`` (a bank store, through the store's own commit, which stores each
version's index with it as ``cleanset bank import`` does) and reused. Its next version is written there too and
kept aside; at reload time it is renamed into the store, as an import's last step does, so the reload measures
making a version live, not parsing a list or building its index.

``--target URL`` (repeatable) also drives another lookup service, such as HMA run locally with the same bank,
with the same queries and clients, and prints its line beside ours; ``--target-request`` is the request template
(``{pdq}`` is replaced by the query hash), HMA's lookup by default.

    .venv/bin/python bench/service_load.py [--seconds 60] [--entries 10000000] [--target URL]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

BANK = "pdq10m"
CLIENTS = 32
NEAR_SHARE = 0.1
HMA_REQUEST = "GET /m/lookup?signal_type=pdq&signal={pdq}"
OURS_REQUEST = 'POST /v1/check/hashes {"hashes":{"pdq":"{pdq}"}}'


# -- the bank ------------------------------------------------------------------------------------------------------


def _commit(home: Path, values: np.ndarray, note: str) -> int:
    """A version of ``values`` with ids ``0..n-1`` through the store's own commit (canonical order, digest, diff,
    owner-only write); only the parsing of a list file is skipped."""
    import pyarrow as pa

    from cleanset.banks.columns import ParsedBank, SignalColumns
    from cleanset.banks.store import BankStore
    from cleanset.banks.versions import SourceInfo
    from cleanset.matching.stored import write_indexes

    n = len(values)
    parsed = ParsedBank(
        signals={"pdq": SignalColumns(values=values, rows=np.arange(n, dtype=np.int64))},
        ids=pa.array(np.arange(n, dtype=np.int64)).cast(pa.string()),
    )
    store = BankStore(home, prepare=write_indexes)  # as `cleanset bank import` does: the index is stored with it
    source = SourceInfo(file="<bench>", sha256=None, bytes=None)
    return store._commit(BANK, parsed, "<bench>", "bench", source, False, note, None, time.perf_counter()).version


def bank_store(cache: Path, n: int) -> tuple[Path, np.ndarray, Path]:
    """(store home, the values of version 1, version 2's folder kept aside), made once per size."""
    from cleanset.matching.hamming import FORMAT

    root = cache / f"bank-{n}-index{FORMAT}"  # a layout change makes a new one (an old one would be rebuilt)
    home, parked, done = root / "home", root / "v2-parked", root / "done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t0 = time.perf_counter()
        values = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
        _commit(home, values, "bench v1")
        v2 = values.copy()
        v2[: max(1, n // 100)] = np.random.default_rng(n + 1).integers(0, 256, (max(1, n // 100), 32), np.uint8)
        _commit(home, v2, "bench v2")
        os.rename(home / "banks" / BANK / "versions" / "2", parked)
        done.write_text("ok")
        print(f"  (bench bank of {n:,} entries written to {root} in {time.perf_counter() - t0:.0f} s, once)")
    v2_in_store = home / "banks" / BANK / "versions" / "2"
    if v2_in_store.exists():  # an interrupted run left it live: put it aside again
        os.rename(v2_in_store, parked)
    from cleanset.banks.store import BankStore

    values = np.asarray(BankStore(home).open(BANK).values("pdq"))
    return home, values, parked


def queries(values: np.ndarray, k: int, seed: int = 5) -> tuple[list[str], int]:
    """``k`` PDQ query hashes: a tenth within distance 1..31 of a bank entry, the rest random (about 128 bits
    from everything). Returns the hex values and how many are near (those come first)."""
    rng = np.random.default_rng(seed)
    near = int(k * NEAR_SHARE)
    out = rng.integers(0, 256, (k, 32), dtype=np.uint8)
    rows = rng.integers(0, len(values), near)
    for i, r in enumerate(rows):
        v = np.unpackbits(np.asarray(values[r]))
        flip = rng.choice(256, int(rng.integers(1, 32)), replace=False)
        v[flip] ^= 1
        out[i] = np.packbits(v)
    return [bytes(r).hex() for r in out], near


# -- the server ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident MB of ``pid`` and its children (``--workers N``: the supervisor and its N workers)."""
    total = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(rss_mb(int(c)) for c in children)


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, limit: float = 300) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {LOGS[proc.pid].read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {limit} s")


LOGS: dict[int, Path] = {}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    LOGS[proc.pid] = log
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


BARE_APP = """
import hashlib, hmac, os
import orjson
from fastapi import FastAPI, HTTPException, Request
app = FastAPI()
DIGEST = hashlib.sha256(os.environ["BARE_KEY"].encode()).hexdigest()
@app.post("/v1/check/hashes")
async def check(request: Request):
    h = request.headers.get("authorization", "")[7:]
    if not hmac.compare_digest(hashlib.sha256(h.encode()).hexdigest(), DIGEST):
        raise HTTPException(401)
    body = orjson.loads(await request.body())  # read and parse the body, as any lookup must
    return {"verdict": "keep", "matches": [], "n": len(body)}
"""


# -- load generators -----------------------------------------------------------------------------------------------


def _request_parts(template: str, pdq: str) -> tuple[str, str, str]:
    method, _, rest = template.partition(" ")
    path, _, body = rest.partition(" ")
    return method, path.replace("{pdq}", pdq), body.replace("{pdq}", pdq)


def _lua(url_host: str, key: str, reqs: list[tuple[str, str, str]], out: Path) -> None:
    lines = ["local reqs = {"]
    for m, p, b in reqs:
        lines.append(f"  {{{json.dumps(m)}, {json.dumps(p)}, {json.dumps(b)}}},")
    lines += [
        "}",
        "local n = #reqs",
        "local i = 0",
        "local hdr = {['Authorization'] = 'Bearer " + key + "', ['Content-Type'] = 'application/json'}",
        "function setup(thread) thread:set('off', math.random(0, n - 1)) end",
        "function init(args) i = off end",
        "request = function()",
        "  i = i + 1",
        "  local r = reqs[(i % n) + 1]",
        "  local body = nil",
        "  if r[3] ~= '' then body = r[3] end",
        "  return wrk.format(r[1], r[2], hdr, body)",
        "end",
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,\''
        ' .. \'"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n\','
        " summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),"
        " e.connect, e.read, e.write, e.status, e.timeout))",
        "end",
    ]
    out.write_text("\n".join(lines) + "\n")


def drive_wrk(url: str, key: str, reqs: list[tuple[str, str, str]], seconds: float, tmp: Path) -> dict[str, float]:
    script = tmp / "load.lua"
    _lua(url, key, reqs, script)
    cmd = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    d = json.loads(line[len("WRKJSON ") :])
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return {
        "rps": d["requests"] / (d["duration_us"] / 1e6),
        "p50_ms": d["p50_us"] / 1000,
        "p99_ms": d["p99_us"] / 1000,
        "errors": errors,
        "requests": d["requests"],
    }


async def _py_load(url: str, key: str, reqs: list[tuple[str, str, str]], seconds: float) -> dict[str, float]:
    """Keep-alive HTTP/1.1 over asyncio streams: far lighter than an HTTP client library, still Python."""
    host, port = url.split("//")[1].split(":")
    raw = [
        (
            f"{m} {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n{b}"
        ).encode()
        for m, p, b in reqs
    ]
    lat: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(c: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = c * 7919
        while time.perf_counter() < stop_at:
            i += 1
            t0 = time.perf_counter()
            writer.write(raw[i % len(raw)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for h in head.split(b"\r\n"):
                if h[:15].lower() == b"content-length:":
                    length = int(h[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(CLIENTS)))
    took = time.perf_counter() - t0
    arr = np.sort(np.asarray(lat))
    return {
        "rps": len(arr) / took,
        "p50_ms": float(arr[len(arr) // 2] * 1000),
        "p99_ms": float(arr[int(len(arr) * 0.99)] * 1000),
        "errors": errors,
        "requests": len(arr),
    }


def drive(url: str, key: str, reqs: list[tuple[str, str, str]], seconds: float, tmp: Path) -> dict[str, float]:
    if shutil.which("wrk"):
        return drive_wrk(url, key, reqs, seconds, tmp)
    return asyncio.run(_py_load(url, key, reqs, seconds))


def line(label: str, r: dict[str, float]) -> str:
    return (
        f"  {label}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"errors {int(r['errors'])} ({int(r['requests']):,} requests)"
    )


# -- images --------------------------------------------------------------------------------------------------------


def jpegs(n: int, side: int = 1000) -> list[bytes]:
    """1 MP JPEGs drawn here: smooth random colour fields with fine noise (benign, and with stable PDQ)."""
    from PIL import Image

    rng = np.random.default_rng(11)
    out = []
    for _ in range(n):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        big = np.asarray(small.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
        big = np.clip(big + rng.integers(-12, 13, big.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def in_process_banks(home: Path, warm: bytes) -> Any:
    from cleanset import api

    os.environ["CLEANSET_HOME"] = str(home)
    banks = api.open_banks([BANK])
    _ = banks.matcher
    api.check_bytes(warm, banks)  # warm-up (compiles the kernels), as the service's first request did
    return banks


def in_process_rate(images: list[bytes], banks: Any, seconds: float, threads: int) -> tuple[float, int]:
    """``api.check_bytes`` on the same images, the same bank, ``threads`` at a time (as the service runs them)."""
    from cleanset import api

    done = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def work(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop_at:
            api.check_bytes(images[i % len(images)], banks)
            i += threads
            with lock:
                done += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return done / (time.perf_counter() - t0), done


async def _image_load(url: str, key: str, images: list[bytes], seconds: float) -> tuple[float, int, int]:
    import httpx

    done = errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "image/jpeg"}

        async def one(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.perf_counter() < stop_at:
                r = await c.post("/v1/check/image", content=images[i % len(images)], headers=headers)
                i += CLIENTS
                done += 1
                errors += r.status_code != 200 or r.json()["verdict"] is None

        t0 = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(CLIENTS)))
    return done / (time.perf_counter() - t0), done, errors


def _image_lua(key: str, files: list[Path], out: Path) -> None:
    """wrk posting the images in turn (each read once, at start), counting as errors the answers that are not a
    200 with a verdict, and the requests wrk saw fail (connect, read, write, timeout)."""
    names = ", ".join(json.dumps(str(f)) for f in files)
    out.write_text(
        f"""local files = {{{names}}}
local bodies = {{}}
for k, f in ipairs(files) do local h = io.open(f, "rb"); bodies[k] = h:read("*a"); h:close() end
local n = #bodies
local i = 0
local threads = {{}}
local hdr = {{['Authorization'] = 'Bearer {key}', ['Content-Type'] = 'image/jpeg'}}
function setup(thread) thread:set('off', math.random(0, n - 1)); table.insert(threads, thread) end
function init(args) i = off; bad = 0 end
request = function() i = i + 1; return wrk.format('POST', '/v1/check/image', hdr, bodies[(i % n) + 1]) end
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"verdict":null', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local b = e.connect + e.read + e.write + e.timeout  -- failures wrk never hands to response()
  for _, t in ipairs(threads) do b = b + t:get('bad') end
  io.write(string.format('WRKJSON {{"requests":%d,"duration_us":%d,"bad":%d}}\\n', summary.requests,
    summary.duration, b))
end
"""
    )


def drive_images(url: str, key: str, images: list[bytes], seconds: float, tmp: Path) -> tuple[float, int, int]:
    """(requests/s, requests, errors) of image checks by 32 clients: by wrk when installed (as the lookups are,
    so the load generator's own CPU, which shares the machine with the server, is as small as it can be), by an
    asyncio HTTP client otherwise."""
    if not shutil.which("wrk"):
        return asyncio.run(_image_load(url, key, images, seconds))
    files = []
    for k, data in enumerate(images):
        files.append(tmp / f"image{k}.jpg")
        files[-1].write_bytes(data)
    script = tmp / "images.lua"
    _image_lua(key, files, script)
    cmd = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    d = json.loads(next(x for x in out.splitlines() if x.startswith("WRKJSON "))[len("WRKJSON ") :])
    return d["requests"] / (d["duration_us"] / 1e6), d["requests"], d["bad"]


# -- the run -------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="hash-lookup load per service")
    ap.add_argument("--image-seconds", type=float, default=None, help="image load (default: --seconds / 2)")
    ap.add_argument("--reload-seconds", type=float, default=40.0, help="load around the import and reload")
    ap.add_argument(
        "--reload-when",
        choices=("import", "staged"),
        default="import",
        help="send the reload at once after the import, while its index is still being staged (the worst case), "
        "or only once /v1/banks lists it as staged",
    )
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--queries", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=1, help="server processes (`cleanset serve --workers`)")
    ap.add_argument("--target", action="append", default=[], help="another lookup service to drive the same way")
    ap.add_argument("--target-request", default=HMA_REQUEST, help="request template; {pdq} is the query")
    ap.add_argument("--target-key", default="", help="bearer token for --target, if it wants one")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cleanset-bench-service"))
    args = ap.parse_args()
    image_seconds = args.image_seconds if args.image_seconds is not None else args.seconds / 2
    gen = "wrk (Lua script)" if shutil.which("wrk") else "Python asyncio keep-alive generator (no wrk found)"
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {CLIENTS} clients, load by {gen}")

    home, values, parked = bank_store(Path(args.cache), args.entries)
    qs, near = queries(values, args.queries)
    print(f"bank {BANK}: {len(values):,} PDQ entries; {len(qs):,} queries, {near:,} within distance 31 of an entry")
    ours = [_request_parts(OURS_REQUEST, q) for q in qs]

    env = {**os.environ, "CLEANSET_HOME": str(home)}
    os.environ["CLEANSET_HOME"] = str(home)
    from cleanset.service.keys import KeyStore

    key, rec = KeyStore().create("bench", "admin")
    exe = [sys.executable, "-m", "cleanset"]
    ok = True
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        # baseline: a bare async FastAPI endpoint with a key check, same server stack, same load
        (tmp / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        bare = start(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--loop", "uvloop", "--http",
             "httptools", "--no-access-log", "--log-level", "warning", "--app-dir", str(tmp)],
            {**env, "BARE_KEY": key}, tmp / "bare.log",
        )  # fmt: skip
        try:
            wait_ready_bare(f"http://127.0.0.1:{port}", bare)
            base = drive(f"http://127.0.0.1:{port}", key, ours, min(args.seconds, 20), tmp)
        finally:
            stop(bare)
        print(line("baseline, bare FastAPI endpoint with a key check", base))

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        srv = start(
            [*exe, "serve", "--bank", BANK, "--port", str(port), "--workers", str(args.workers), "--rate", "0"],
            env,
            tmp / "access.log",
        )
        try:
            wait_ready(url, srv)
            print(f"  server ready in {time.perf_counter() - t0:.1f} s (opened the bank and mapped its stored index)")
            import httpx

            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
                first = c.post("/v1/check/image", content=jpegs(1)[0])
                if first.status_code != 200:
                    raise SystemExit(
                        f"first image check: {first.status_code} {first.text}\n{LOGS[srv.pid].read_text()}"
                    )
                hits = sum(
                    bool(c.post("/v1/check/hashes", json={"hashes": {"pdq": q}}).json()["matches"]) for q in qs[:200]
                )
            mem_start = rss_mb(srv.pid)
            print(f"  near queries matched (first 200 queries): {hits} of {min(near, 200)} near ones")
            ok &= hits == min(near, 200)

            r = drive(url, key, ours, args.seconds, tmp)
            print(line(f"hash lookups, {len(values):,}-entry PDQ bank", r))
            ratio = r["rps"] / base["rps"]
            hit = r["rps"] >= 4000 and r["p99_ms"] < 15 and r["errors"] == 0
            print(
                f"  hash lookups / bare endpoint: {ratio:.2f} (target >= 0.5); target >= 4,000 req/s with "
                f"p99 < 15 ms and 0 errors: {'PASS' if hit else 'FAIL'}"
            )
            ok &= hit

            mem_hashes = rss_mb(srv.pid)
            images = jpegs(args.images)
            threads = os.cpu_count() or 1
            banks = in_process_banks(home, images[0])
            # alternated in short rounds, so a shared machine's changing load weighs on both sides alike
            rounds, n_img, img_err, n_loc, t_srv, t_loc = 4, 0, 0, 0, 0.0, 0.0
            for _ in range(rounds):
                rate, n, err = drive_images(url, key, images, image_seconds / rounds, tmp)
                n_img, img_err, t_srv = n_img + n, img_err + err, t_srv + n / rate
                rate, n = in_process_rate(images, banks, image_seconds / rounds, threads)
                n_loc, t_loc = n_loc + n, t_loc + n / rate
            srv_rate, local = n_img / t_srv, n_loc / t_loc
            # what the index itself allows: the same queries through api.check_many on one thread, in batches of
            # 16 (about what the service's batcher collects at 32 clients)
            from cleanset import api

            t0, n_q = time.perf_counter(), 0
            while time.perf_counter() - t0 < min(10.0, args.seconds / 4):
                api.check_many([{"pdq": q} for q in qs[n_q % len(qs) : n_q % len(qs) + 16]], banks)
                n_q += 16
            lookups_local = n_q / (time.perf_counter() - t0)
            del banks
            overhead = 1 - srv_rate / local
            print(
                f"  image checks (1 MP JPEG, {len(images)} images, {rounds} alternating rounds): service "
                f"{srv_rate:.1f} req/s ({n_img} requests, {img_err} errors); in-process api.check_bytes, {threads} "
                f"threads: {local:.1f} /s; service / in-process {srv_rate / local:.2f}, overhead {overhead:.0%} "
                f"(target <= 30 %: {'PASS' if overhead <= 0.30 and img_err == 0 else 'FAIL'})"
            )
            ok &= overhead <= 0.30 and img_err == 0
            print(
                f"  in-process api.check_many on the same bank, one thread, batches of 16: {lookups_local:,.0f} "
                f"lookups/s (service / in-process: {r['rps'] / lookups_local:.2f})"
            )
            mem_images = rss_mb(srv.pid)

            rel = reload_under_load(url, key, ours, args.reload_seconds, parked, home, tmp, args.reload_when)
            staged = (
                f"staged (index built) {rel['staged_s']:.2f} s after its import, "
                if args.reload_when == "staged"
                else "reloaded at once after its import (staging still building), "
            )
            print(
                f"  reload under load: version {rel['version']} {staged}live {rel['live_s']:.2f} s after the "
                "reload call "
                f"(target < 5 s: {'PASS' if rel['live_s'] < 5 else 'FAIL'}); "
                + line("load meanwhile", rel["load"]).strip()
            )
            ok &= rel["live_s"] < 5 and rel["load"]["errors"] == 0
            time.sleep(1.0)
            mem_end = rss_mb(srv.pid)
            grow = mem_end - mem_start
            print(
                f"  server RSS by phase: after warm-up {mem_start:,.0f} MB, after hash lookups {mem_hashes:,.0f} MB, "
                f"after image checks {mem_images:,.0f} MB, after the reload {mem_end:,.0f} MB"
            )
            print(
                f"  server RSS: start {mem_start:,.0f} MB, end {mem_end:,.0f} MB ({grow:+,.0f} MB, "
                f"{grow / mem_start:+.1%}; target: no growth beyond noise, <= 10 %: "
                f"{'PASS' if grow / mem_start <= 0.10 else 'FAIL'})"
            )
            ok &= grow / mem_start <= 0.10
        finally:
            stop(srv)
            v2 = home / "banks" / BANK / "versions" / "2"
            if v2.exists():
                os.rename(v2, parked)
        lines = sum(1 for _ in (tmp / "access.log").open("rb"))
        print(f"  access log: {lines:,} JSON lines")

        for target in args.target:
            reqs = [_request_parts(args.target_request, q) for q in qs]
            print(line(f"--target {target}", drive(target.rstrip("/"), args.target_key, reqs, args.seconds, tmp)))
    KeyStore().revoke(rec.id)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    sys.exit(0 if ok else 1)


def wait_ready_bare(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit("baseline server exited")
        try:
            httpx.get(f"{url}/docs", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("baseline server not ready")


def reload_under_load(
    url: str,
    key: str,
    reqs: list[tuple[str, str, str]],
    seconds: float,
    parked: Path,
    home: Path,
    tmp: Path,
    when: str = "import",
) -> dict[str, Any]:
    """Load for ``seconds``; a sixth of the way in, version 2 is renamed into the store (an import's last step).
    ``when`` "staged": the service stages its index (timed until ``/v1/banks`` lists it as staged), then it is
    reloaded; "import": the reload is sent at once, so it arrives while the staging is still building (it waits
    for that build, or builds). Either way ``live_s`` runs from the reload call until it answers with it live."""
    import httpx

    out: dict[str, Any] = {}

    def do_reload() -> None:
        time.sleep(seconds / 6)
        os.rename(parked, home / "banks" / BANK / "versions" / "2")
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            while when == "staged" and c.get("/v1/banks").json()["staged"].get(BANK) != 2:
                if time.perf_counter() - t0 > 120:
                    raise SystemExit("version 2 was not staged within 120 s")
                time.sleep(0.05)
            out["staged_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = c.post(f"/v1/banks/{BANK}/reload")
            r.raise_for_status()
            out["live_s"] = time.perf_counter() - t0
            out["version"] = c.get("/v1/banks").json()["banks"][0]["version"]

    th = threading.Thread(target=do_reload)
    th.start()
    out["load"] = drive(url, key, reqs, seconds, tmp)
    th.join()
    return out


if __name__ == "__main__":
    main()
