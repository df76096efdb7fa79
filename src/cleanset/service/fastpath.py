"""``POST /v1/check/hashes`` served in plain ASGI, in front of FastAPI.

Measured on the 2-core machine: FastAPI's routing, dependency solving and body model cost more than the lookup
itself, about 3x the requests/s lost against this handler. The work is the same as the route's: the same key
check (``Service.authorize_raw``), the same ``Service.lookup`` (validation, thresholds, the batcher, the answer),
the same errors with the same statuses; only the framework around them is left out. The FastAPI route stays
declared, so the OpenAPI document describes this endpoint, and serves it when the fast path is turned off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import HTTPException

if TYPE_CHECKING:
    from cleanset.service.app import Service

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
PATH = "/v1/check/hashes"


async def serve_hashes(svc: Service, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    state: dict[str, Any] = scope["state"]
    try:
        auth = x_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"x-api-key":
                x_key = value.decode("latin-1")
        key = svc.authorize_raw(auth or x_key, "check", state)
        body = await _body(receive, svc.limits.max_body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise HTTPException(422, f"body: not JSON ({e.msg} at byte {e.pos})") from None
        status, payload, headers = 200, await svc.lookup(data, key, state), None
    except HTTPException as e:
        status, payload, headers = e.status_code, {"detail": e.detail}, e.headers
    out = orjson.dumps(payload)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": out})


async def _body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise HTTPException(499, "client went away")
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not msg.get("more_body"):
            return b"".join(chunks)
