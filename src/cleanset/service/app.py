"""The FastAPI app: authenticated checks over live banks, answered by the Python API and so by ``assess``.

Every check endpoint ends in one of ``api.check_bytes``, ``check_many``, ``check_url`` or ``check_text`` on the
current ``BankSet``, and a match and a no-match answer through the same lines (no early return for either), so a
caller cannot tell them apart by anything but the answer. Answers, logs and metrics name a match by bank, version,
entry id, signal, probe and distance; the values of a list never reach this module.

Hash lookups from concurrent requests are answered in batches by one thread (``batching``: the fixed cost of a
lookup is paid once per batch, and the index kernel runs beside the event loop), and their endpoint is served in
plain ASGI in front of FastAPI (``fastpath``) with this module's ``Service.lookup``; image checks go to the
service's own threads (``slots``: they take queued checks themselves), at most one per core at a time, under the
timeout (a thread past it finishes, but its answer
is dropped, and it keeps its slot until it has finished, so timed-out work never piles up beyond the cores).
With ``Settings.screen`` an image check also runs the screening classifiers on the same decode, in the same slot
and under the same timeout; ``Settings.policy`` judges every image, hash and URL verdict, as a scan under that
policy would.

``Guard`` (the outermost middleware, plain ASGI) checks the key of every request but ``/healthz`` and ``/readyz``
before a byte of its body is read, and refuses a body over the limit by its declared length or as it streams:
neither a caller without a key nor a large body reaches FastAPI's body parsing.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cleanset import __version__
from cleanset import api as cs_api
from cleanset.errors import CleansetError
from cleanset.service import fastpath
from cleanset.service.batching import LookupBatcher
from cleanset.service.keys import KeyRecord, KeyStore
from cleanset.service.limits import RateLimiter
from cleanset.service.live import (
    RELEASE_AFTER_S,
    BankSet,
    LiveBanks,
    follow_siblings,
    release_memory,
    stage_imports,
)
from cleanset.service.metrics import Metrics
from cleanset.service.settings import Settings
from cleanset.service.slots import CheckSlots
from cleanset.signals.engine import HashConfig, HashEngine

if TYPE_CHECKING:
    from cleanset.assess import Policy
    from cleanset.screening.stage import Screening

ACCESS = logging.getLogger("cleanset.access")
KEY_HEADER = APIKeyHeader(name="Authorization", auto_error=False, description="`Bearer <key>` (or X-API-Key)")

Scope = dict[str, Any]


class JSON(Response):
    """orjson: measured faster than the standard encoder on these small answers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# -- request and answer shapes (published in the OpenAPI document) ------------------------------------------------

Thresholds = dict[str, dict[str, int]]


class HashesIn(BaseModel):
    hashes: dict[str, str] | None = Field(None, description="One item: {signal: hex}, e.g. {'pdq': '...'}")
    items: list[dict[str, str]] | None = Field(None, description="A batch of items, each {signal: hex}")
    thresholds: Thresholds | None = Field(
        None, description="{bank: {signal: bits}}: tighter than the bank's (admin keys may also loosen)"
    )


class UrlIn(BaseModel):
    url: str = Field(..., description="Checked against URL lists by its canonical hash; never fetched")


class TextIn(BaseModel):
    text: str = Field(..., description="A prompt or a caption")
    lists: list[str] | None = Field(None, description="Imported term lists (NAME or NAME@VERSION) beside the defaults")
    policy: Literal["default", "strict"] = Field("default", description="strict: refuse what default would review")


class MatchOut(BaseModel):
    bank: str
    version: int
    entry_id: str
    signal: str
    probe: str
    distance: int


class FailureOut(BaseModel):
    code: str
    detail: str


class CheckOut(BaseModel):
    verdict: str | None = Field(..., description="keep | remove | review; null when the item could not be checked")
    matches: list[MatchOut]
    reasons: list[str]
    failure: FailureOut | None
    notes: list[str]
    scores: dict[str, float] = Field(default_factory=dict, description="Screening scores, when screening ran")
    rules: list[str] = Field(default_factory=list, description="Screening rules that fired")
    lists: list[str] = Field(default_factory=list, description="Term lists that matched (category:name@version)")
    generation: int = Field(..., description="Which loaded set of banks answered")


class BatchOut(BaseModel):
    results: list[CheckOut]
    generation: int


async def _check_scope(request: Request, header: Annotated[str | None, Security(KEY_HEADER)] = None) -> KeyRecord:
    """The key ``Guard`` verified (``header`` is declared for the OpenAPI document only)."""
    return scoped(request.scope["state"], "check")


async def _admin_scope(request: Request, header: Annotated[str | None, Security(KEY_HEADER)] = None) -> KeyRecord:
    return scoped(request.scope["state"], "admin")


def scoped(state: Mapping[str, Any], scope: str) -> KeyRecord:
    """403 for a key of the wrong scope; the key itself was checked (401, 429) before the body was read."""
    rec: KeyRecord | None = state.get("key")
    if rec is None:  # Guard runs in front of every route but health: this is a wiring error, refused all the same
        raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})
    if not rec.allows(scope):
        raise HTTPException(403, f"key {rec.id} has scope {rec.scope!r}; this endpoint needs {scope!r}")
    return rec


CheckKey = Annotated[KeyRecord, Security(_check_scope)]
AdminKey = Annotated[KeyRecord, Security(_admin_scope)]

# -- the app -------------------------------------------------------------------------------------------------------


class Service:
    """State the endpoints share: keys, live banks, limits, metrics. One per app."""

    def __init__(self, settings: Settings, live: LiveBanks | None = None) -> None:
        self.settings = settings
        self.limits = settings.limits
        # Built once, first: a missing model or policy file stops the start before any bank is loaded.
        self.policy, self.screening = screening_of(settings)
        self.keys = KeyStore(settings.keys_path)
        self.live = live if live is not None else LiveBanks(settings.banks, settings.quality_gate)
        self.rate = RateLimiter(self.limits.rate, self.limits.burst)
        self.metrics = Metrics()
        slots = self.limits.max_checks or max(1, os.cpu_count() or 1)
        self.checks = CheckSlots(slots, self.limits.max_waiting, self.limits.queue_s, 8 * self.limits.max_body)
        # The service's own engine: the pixel limit holds for every frame, at decode, and only so many frames
        # are decoded, whatever a file's header claims.
        self.engine = HashEngine(HashConfig(max_pixels=self.limits.max_pixels, max_frames=self.limits.max_frames))
        self.lookups = LookupBatcher()
        self.screen_info = describe_screening(self.policy, self.screening)
        # What an image check runs in its slot: the banks' match, and the classifiers on the same decode.
        self.check_image = functools.partial(cs_api.check_bytes, policy=self.policy, screen=self.screening)
        if settings.launch is not None:  # sibling workers of one launch stamp and follow reloads under its id
            self.live.launch = settings.launch
        self._follower: asyncio.Task[None] | None = None
        self._stager: asyncio.Task[None] | None = None
        warm_up(self.live.current.banks, self.screening)

    def start_watching(self) -> None:
        """Started from the first request (it needs the running loop; tests run the app without lifespan)."""
        loop = asyncio.get_running_loop()
        if self.settings.follow_reloads and self._follower is None:
            self._follower = loop.create_task(follow_siblings(self.live))
        if self.settings.stage_imports and self._stager is None:
            self._stager = loop.create_task(stage_imports(self.live))

    def authenticate(self, raw: str | None, state: dict[str, Any]) -> KeyRecord:
        """401 without a valid key, 429 over the key's rate; the record goes into the request's ``state`` (the
        routes check its scope), its id into the log. Called by ``Guard`` for every route but health."""
        if self._stager is None and self._follower is None:
            self.start_watching()
        if raw and raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        try:
            self.keys.refresh(time.monotonic())
        except CleansetError as e:  # a key file that cannot be trusted: nobody is let in until it is fixed
            raise HTTPException(503, f"keys unavailable: {e}") from None
        rec = self.keys.verify(raw) if raw else None
        if rec is None:
            raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})
        state["key_id"] = rec.id
        state["key"] = rec
        wait = self.rate.allow(rec.id)
        if wait:
            raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": str(max(1, round(wait)))})
        return rec

    def banks_for(self, current: BankSet, thresholds: Thresholds | None, key: KeyRecord) -> cs_api.Banks:
        """The banks to ask: as loaded, or a view at the caller's thresholds. Tighter is anyone's right; looser
        only an admin's, since a wider threshold changes what the operator decided the list means."""
        if not thresholds:
            return current.banks
        for bank, per in thresholds.items():
            for sig, bits in per.items():
                have = current.threshold(bank, sig)
                if have is None:
                    raise HTTPException(422, f"thresholds.{bank}.{sig}: no such bank and signal is served")
                if bits < 0:
                    raise HTTPException(422, f"thresholds.{bank}.{sig}: must be 0 or more, got {bits}")
                if bits > have and key.scope != "admin":
                    raise HTTPException(
                        403, f"thresholds.{bank}.{sig}: {bits} is looser than the bank's {have}; only admin keys may"
                    )
                # Even an admin's: near the signal's length every entry comes back with its distance, and a few
                # hundred such answers would spell out the list's values.
                cap = have * self.limits.loosen_factor
                if bits > have and bits > cap:
                    raise HTTPException(
                        422,
                        f"thresholds.{bank}.{sig}: {bits} is over the cap of {cap} ({self.limits.loosen_factor}x "
                        f"the bank's {have})",
                    )
        # One view per distinct ask, kept on the set (and dropped with it on reload), so requests asking the same
        # thresholds share a Banks object and so a batch.
        ask = orjson.dumps(thresholds, option=orjson.OPT_SORT_KEYS)
        view = current.views.get(ask)
        if view is None:
            if len(current.views) >= 64:
                current.views.clear()
            view = current.views[ask] = current.banks.with_thresholds(thresholds)
        return view

    def answer(self, state: dict[str, Any], route: str, check: cs_api.Check, generation: int) -> dict[str, Any]:
        out = check.to_dict()
        out["generation"] = generation
        if len(out["matches"]) > self.limits.max_matches:
            # The verdict counted every match; naming them all would let a loose ask map the list around a probe.
            out["notes"].append(f"{len(out['matches'])} matches; the closest {self.limits.max_matches} are named")
            out["matches"] = sorted(out["matches"], key=lambda m: m["distance"])[: self.limits.max_matches]
        self.metrics.verdict(route, check.verdict)
        state["verdict"] = check.verdict or "failed"
        state["matches"] = state.get("matches", 0) + len(check.matches)
        return out

    async def lookup(self, body: Any, key: KeyRecord, state: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/check/hashes`` from its parsed JSON body, shared by the FastAPI route and the fast path
        (``fastpath.py``): one item (``hashes``) or a batch (``items``), validated here, answered by the
        batcher through ``api.check_many``."""
        if not isinstance(body, dict):
            raise HTTPException(422, "body: expected a JSON object with 'hashes' or 'items'")
        one, many, thresholds = body.get("hashes"), body.get("items"), body.get("thresholds")
        if (one is None) == (many is None):
            raise HTTPException(422, "give exactly one of 'hashes' (one item) or 'items' (a batch)")
        if many is not None and not isinstance(many, list):
            raise HTTPException(422, "items: expected a list of {signal: hex} objects")
        items: list[Any] = [one] if one is not None else list(many or [])
        if len(items) > self.limits.max_batch:
            raise HTTPException(413, f"items: {len(items)} is over the limit of {self.limits.max_batch} per request")
        probe_lists = []
        for i, h in enumerate(items):
            where = "hashes" if one is not None else f"items[{i}]"
            if not isinstance(h, dict) or not all(isinstance(v, str) for v in h.values()):
                raise HTTPException(422, f"{where}: expected an object of signal: hex strings")
            if not h:
                raise HTTPException(422, f"{where}: empty")
            probes: list[Any] = []
            for sig, value in h.items():  # here, so a bad value fails its own request and never a whole batch
                try:
                    probes += cs_api.hash_probes({sig: value})
                except (ValueError, CleansetError) as e:
                    raise HTTPException(422, f"{where}.{sig}: {e}") from None
            probe_lists.append(probes)
        if thresholds is not None and not _thresholds_ok(thresholds):
            raise HTTPException(422, "thresholds: expected {bank: {signal: bits}}")
        current = self.live.current
        banks = self.banks_for(current, thresholds, key)
        try:
            checks = await self.lookups.check(probe_lists, banks, self.policy, self.limits.timeout_s)  # validated
        except (ValueError, CleansetError) as e:
            raise HTTPException(422, f"hashes: {e}") from None
        except TimeoutError:
            raise HTTPException(
                503, f"lookup took over {self.limits.timeout_s} s; not checked", headers={"Retry-After": "1"}
            ) from None
        if one is not None:
            return self.answer(state, "hashes", checks[0], current.generation)
        results = [self.answer(state, "hashes", c, current.generation) for c in checks]
        return {"results": results, "generation": current.generation}


def create_app(settings: Settings, live: LiveBanks | None = None) -> FastAPI:
    """The service as an ASGI app; ``live`` lets a caller share banks it already built (tests, benches)."""
    svc = Service(settings, live)
    app = FastAPI(
        title="cleanset",
        version=__version__,
        description="Check images, hashes, URLs and prompts against hotline hash lists. Answers never hold a "
        "list's values: a match is named by bank, version, entry id, signal, probe and distance.",
        default_response_class=JSON,
    )
    app.state.service = svc

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSON:
        """422 naming the field and what is wrong, without echoing the input: a caller's hashes may be a list's
        values, and error answers end up in logs and tickets."""
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSON({"detail": detail}, status_code=422)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process answers. No key needed."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict[str, Any]:
        """Banks are loaded and indexed. No key needed; names no bank."""
        return {"status": "ready", "generation": svc.live.current.generation}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics(k: CheckKey) -> PlainTextResponse:
        """Prometheus text: requests, latencies, verdicts, bank versions."""
        return PlainTextResponse(svc.metrics.render(svc.live.current), media_type="text/plain; version=0.0.4")

    @app.post(
        "/v1/check/hashes",
        tags=["check"],
        response_model=CheckOut | BatchOut,
        openapi_extra={
            "requestBody": {"content": {"application/json": {"schema": HashesIn.model_json_schema()}}, "required": True}
        },
    )
    async def check_hashes(request: Request, k: CheckKey) -> Any:
        """Hashes computed elsewhere (on-device hashing): one item (``hashes``) or a batch (``items``). Served
        by the fast path (``fastpath.py``) unless it is turned off; both parse and answer with ``fastpath.answer``
        (so ``Service.lookup``), so they agree byte for byte, errors included."""
        status, payload, headers = await fastpath.answer(
            svc, await request.body(), request.headers.get("content-type"), k, request.scope["state"]
        )
        return JSON(payload, status_code=status, headers=headers)

    @app.post(
        "/v1/check/image",
        tags=["check"],
        response_model=CheckOut,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                    },
                },
                "required": True,
            }
        },
    )
    async def check_image(request: Request, k: CheckKey, thresholds: str | None = None) -> Any:
        """Image bytes, raw or as the multipart field ``file``: hashed with every default signal (one decode),
        matched and judged. ``thresholds``: the same object as for hashes, as a JSON query parameter."""
        data = await read_image(request, svc.limits.max_body)
        check_pixels(data, svc.limits.max_pixels)
        wanted = _thresholds_param(thresholds)
        current = svc.live.current
        banks = svc.banks_for(current, wanted, k)
        work = functools.partial(svc.check_image, data, banks, engine=svc.engine)
        check = await svc.checks.run(work, len(data), timeout_s=svc.limits.timeout_s)
        return JSON(svc.answer(request.scope["state"], "image", check, current.generation))

    @app.post("/v1/check/url", tags=["check"], response_model=CheckOut)
    async def check_url(body: UrlIn, request: Request, k: CheckKey) -> Any:
        """A URL against URL lists, by its canonical hash; nothing is downloaded."""
        current = svc.live.current
        check = cs_api.check_url(body.url, current.banks, svc.policy)
        return JSON(svc.answer(request.scope["state"], "url", check, current.generation))

    @app.post("/v1/check/text", tags=["check"], response_model=CheckOut)
    async def check_text(body: TextIn, request: Request, k: CheckKey) -> Any:
        """A prompt or caption against the caption rules (``cleanset.api.check_text``)."""
        current = svc.live.current
        try:
            check = await run_in_threadpool(cs_api.check_text, body.text, body.lists, body.policy)
        except CleansetError as e:
            raise HTTPException(422, f"lists: {e}") from None
        return JSON(svc.answer(request.scope["state"], "text", check, current.generation))

    @app.get("/v1/banks", tags=["banks"])
    async def banks(k: CheckKey) -> dict[str, Any]:
        """Names, versions, sizes and thresholds of the served banks; never a value."""
        cur = svc.live.current
        return {
            "generation": cur.generation,
            "loaded_at": cur.loaded_at,
            "banks": cur.described,
            "staged": svc.live.staged(),
            "screening": svc.screen_info,
        }

    @app.post("/v1/banks/{name}/reload", tags=["banks"])
    async def reload(name: str, k: AdminKey) -> dict[str, Any]:
        """Make the bank's latest stored version live; requests in flight finish on the previous one."""
        served = list(svc.live.current.pinned)
        if name not in served:  # the path is the caller's: never echoed (it could hold anything, a hash included)
            raise HTTPException(404, f"no such bank is served (served: {', '.join(served) or 'none'})")
        try:
            nxt = await run_in_threadpool(svc.live.reload, name)
        except CleansetError as e:
            raise HTTPException(404, str(e)) from None
        svc.metrics.reloads += 1
        # Requests in flight at the swap still hold the previous set; once they have answered, hand its memory
        # back (the reload's own release ran while they held it).
        loop = asyncio.get_running_loop()
        loop.call_later(RELEASE_AFTER_S, lambda: loop.run_in_executor(None, release_memory))
        return {
            "generation": nxt.generation,
            "build_s": round(nxt.build_s, 3),
            "banks": [b for b in nxt.described if b["name"] == name],
        }

    app.add_middleware(AccessLog, svc=svc)
    return app


def screening_of(settings: Settings) -> tuple[Policy | None, Screening | None]:
    """The policy and the built screening the settings name, as ``cleanset scan`` builds them; a file or model
    that is missing is a ``UserError`` naming it, raised before the service listens. Image checks carry no
    caption, so no term list is loaded. ``None`` policy: the default, which the hash batcher already applies."""
    from cleanset.assess import load_policy
    from cleanset.errors import UserError
    from cleanset.screening.stage import DEFAULT_CLASSIFIERS, ScreenConfig

    if settings.classifiers and not settings.screen:
        raise UserError("classifiers are given but screening is off: set screen (--screen) to run them")
    policy = None if settings.policy in (None, "default") else load_policy(settings.policy)
    if not settings.screen:
        return policy, None
    config = ScreenConfig(
        classifiers=settings.classifiers or DEFAULT_CLASSIFIERS, default_terms=False, score_columns=()
    )
    return policy, config.build()  # its errors name the model or config file


def describe_screening(policy: Policy | None, screening: Screening | None) -> dict[str, Any]:
    """What ``/v1/banks`` says about screening: on or off, each model by name and file digest, the policy's
    name. Never a model's path or settings: callers learn what judged them, not how the host is laid out."""
    models = [] if screening is None else [c.describe() for c in screening.classifiers]
    return {
        "enabled": screening is not None,
        "models": [{"name": m["name"], "sha256": m.get("model_sha256")} for m in models],
        "policy": "default" if policy is None else policy.name,
    }


def warm_up(banks: cs_api.Banks, screening: Screening | None = None) -> None:
    """Checks of a picture drawn here (colour ramps) and of a hash, before the first request: the
    hashing and matching kernels load (or compile) now, and with screening the classifiers' sessions are made
    (once per process, shared by the check threads from then on), so the first caller is not the one who waits,
    or times out, for them; ``/readyz`` answers only after this."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (480, 1)), np.tile(ramp[:480, None], (1, 640)), np.full((480, 640), 90)], -1)
    for fmt in ("JPEG", "PNG"):  # each decoder's path, at a size that runs every probe (rotations, regions)
        buf = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buf, fmt)
        cs_api.check_bytes(buf.getvalue(), banks, screen=screening)
    cs_api.check_many([{"md5": "0" * 32}], banks)


def _thresholds_ok(val: Any) -> bool:
    return isinstance(val, dict) and all(
        isinstance(v, dict) and all(isinstance(b, int) and not isinstance(b, bool) for b in v.values())
        for v in val.values()
    )


def _thresholds_param(raw: str | None) -> Thresholds | None:
    if raw is None:
        return None
    try:
        val = json.loads(raw)
        if not _thresholds_ok(val):
            raise ValueError("expected {bank: {signal: bits}}")
    except ValueError as e:
        raise HTTPException(422, f"thresholds: {e}") from None
    return val


async def read_image(request: Request, limit: int) -> bytes:
    """The body, refused at ``limit`` bytes before it is all read (a declared length over it, or a stream that
    grows past it); a multipart body gives its ``file`` field."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        from starlette.datastructures import UploadFile

        request._body = body  # the form parser reads the body already read
        form = await request.form()
        try:
            f = form.get("file")
            if not isinstance(f, UploadFile):
                raise HTTPException(422, "multipart body: no 'file' field")
            body = await f.read()
        finally:
            await form.close()
    if not body:
        raise HTTPException(422, "body: empty; send the image bytes")
    return body


def check_pixels(data: bytes, limit: int) -> None:
    """Refuse an image whose first frame's header declares over ``limit`` pixels, before any pixel is decoded: a
    clear 413 for the common case. The limit itself is the service engine's, held at decode for every frame (a
    later frame over it fails the item); bytes Pillow cannot open go on to the check, which matches their file
    digests and fails them closed (``failed``, with a reason code), never ``keep``."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception:
        return
    if w * h > limit:
        raise HTTPException(413, f"image of {w}x{h} pixels is over the limit of {limit:,}")


HEALTH = frozenset({"/healthz", "/readyz"})
ROUTES = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v1/check/hashes", "/v1/check/image", "/v1/check/url", "/v1/check/text"}
    | {"/v1/banks", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
RELOAD = re.compile(r"/v1/banks/[^/]+/reload")


def route_of(path: str) -> str:
    """The route a path is served by, from a fixed list ("other" for the rest): what metrics and the access log
    name, so a caller cannot write into them (a path may carry anything, a hash included) or grow them."""
    if path in ROUTES:
        return path
    return "/v1/banks/{name}/reload" if RELOAD.fullmatch(path) else "other"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body streams past the limit: an ``HTTPException``, so FastAPI's body reading
    lets it through as it is (413) instead of calling it a parse error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body is over the limit of {limit} bytes")


class AccessLog:
    """Pure ASGI middleware, the outermost: the guard, then one JSON line per request on ``cleanset.access``
    (time, method, route, status, milliseconds, key id, bytes read, verdict, match count), and the request metrics.
    Never a body, a header's secret, a raw path or a hash: the key is named by its id, a match only by count.

    The guard: every route but health needs a key, checked (401, 429) before the body is read, for the fast path
    and FastAPI alike; a body over ``max_body`` is refused by its declared length before it is read, and as it
    streams otherwise."""

    def __init__(self, app: Callable[..., Awaitable[None]], svc: Service) -> None:
        self.app = app
        self.svc = svc
        self.log = svc.settings.access_log
        self.fast = svc.settings.fast_path

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        route = route_of(scope["path"])
        status = 500
        started = False
        size = 0
        limit = self.svc.limits.max_body

        async def send_wrapped(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        async def receive_limited() -> MutableMapping[str, Any]:
            nonlocal size
            msg = await receive()
            size += len(msg.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
            return msg

        try:
            try:
                if route not in HEALTH:
                    self.guard(scope, state, limit)
                if self.fast and route == fastpath.PATH and scope["method"] == "POST":
                    await fastpath.serve_hashes(self.svc, scope, receive_limited, send_wrapped)
                else:
                    await self.app(scope, receive_limited if route not in HEALTH else receive, send_wrapped)
            except HTTPException as e:
                if started:
                    raise
                await fastpath.send_json(send_wrapped, e.status_code, {"detail": e.detail}, e.headers)
        finally:
            took = time.perf_counter() - t0
            self.svc.metrics.observe(route, status, took)
            if self.log and ACCESS.isEnabledFor(logging.INFO):
                ACCESS.info(orjson.dumps(_access_record(scope, route, state, status, took, size)).decode())

    def guard(self, scope: Scope, state: dict[str, Any], limit: int) -> None:
        auth = x_key = length = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's headers.get reads them
            if name == b"authorization" and auth is None:
                auth = value.decode("latin-1")
            elif name == b"x-api-key" and x_key is None:
                x_key = value.decode("latin-1")
            elif name == b"content-length" and length is None:
                length = value
        self.svc.authenticate(auth or x_key, state)
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPException(413, f"body of {int(length)} bytes is over the limit of {limit}")


def _access_record(
    scope: Scope, route: str, state: Mapping[str, Any], status: int, took: float, size: int
) -> dict[str, Any]:
    return {
        "ts": round(time.time(), 3),
        "id": uuid.uuid4().hex[:16],
        "method": scope["method"],
        "path": route,
        "status": status,
        "ms": round(took * 1000, 3),
        "key": state.get("key_id"),
        "bytes_in": size,
        "verdict": state.get("verdict"),
        "matches": state.get("matches"),
        "client": (scope.get("client") or ("", 0))[0],
    }
