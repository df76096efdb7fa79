"""``POST /v1/check/hashes`` served in plain ASGI, in front of FastAPI.

Measured on the 2-core machine: FastAPI's routing, dependency solving and body model cost more than the lookup
itself, about 3x the requests/s lost against this handler. The work is the same as the route's: the same guard in
front (key, rate and body limit: ``app.AccessLog``), the same scope check, the same ``answer`` (parsing, then
``Service.lookup``: validation, thresholds, the batcher), so the same errors with the same statuses; only the
framework around them is left out. The FastAPI route stays
declared, so the OpenAPI document describes this endpoint, and serves it when the fast path is turned off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import HTTPException

if TYPE_CHECKING:
    from cleanset.service.app import Service
    from cleanset.service.keys import KeyRecord

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
PATH = "/v1/check/hashes"


async def serve_hashes(svc: Service, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """The route's work without FastAPI. The key was checked (401, 429) and the body limit set up by the guard in
    front of both (``app.AccessLog``); here, as in the route: the scope (403), then ``answer``."""
    from cleanset.service.app import scoped

    state: dict[str, Any] = scope["state"]
    content_type = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
            break
    try:
        key = scoped(state, "check")
        body = await _body(receive)
    except HTTPException as e:
        await send_json(send, e.status_code, {"detail": e.detail}, e.headers)
        return
    status, payload, headers = await answer(svc, body, content_type, key, state)
    await send_json(send, status, payload, headers)


async def answer(
    svc: Service, body: bytes, content_type: str | None, key: KeyRecord, state: dict[str, Any]
) -> tuple[int, Any, Mapping[str, str] | None]:
    """Status, payload and headers for a hash lookup's body: one function for the fast path and the route, so
    they cannot drift apart (same parsing, same validation, same errors)."""
    try:
        media = (content_type or "application/json").split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise HTTPException(415, f"content-type {media[:64]!r}: send application/json")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise HTTPException(422, f"body: not JSON ({e.msg} at byte {e.pos})") from None
        return 200, await svc.lookup(data, key, state), None
    except HTTPException as e:
        return e.status_code, {"detail": e.detail}, e.headers


async def send_json(send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
    out = orjson.dumps(payload)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": out})


async def _body(receive: Receive) -> bytes:
    """The whole body; the limit is held by ``receive`` itself (the guard's), as for the route."""
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise HTTPException(499, "client went away")
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)
