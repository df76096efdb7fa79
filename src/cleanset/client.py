"""A client for `cleanset serve`, sync and async, over httpx.

Answers come back as ``CheckResult``: the verdict, matches named by bank, version, entry id, signal, probe and
distance, reasons and a failure code, exactly as the service sent them. A refusal by the service (a bad key, a
limit, an unreachable host) raises ``ServiceError`` with the status and the service's own words; it is never turned
into a verdict, so a caller that gates on ``verdict == "keep"`` fails closed.

    with Client("http://127.0.0.1:8080", key) as c:
        if c.check_image(png_bytes).verdict != "keep":
            ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from cleanset.errors import ExternalError

__all__ = ["AsyncClient", "CheckResult", "Client", "ServiceError"]

VERDICTS = ("keep", "remove", "review", None)


class ServiceError(ExternalError):
    """The service refused or could not answer; ``status`` is the HTTP status (0: no answer at all)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"cleanset service: {status or 'no answer'}: {detail}")


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: str | None
    matches: tuple[Mapping[str, Any], ...]
    reasons: tuple[str, ...]
    failure: Mapping[str, str] | None
    notes: tuple[str, ...]
    generation: int

    @classmethod
    def of(cls, d: Any) -> CheckResult:
        """An answer as the service sends it; anything else (a proxy's page, another service) is a
        ``ServiceError``, never a result, so a gate reading it fails closed."""
        try:
            verdict = d["verdict"]
            if verdict not in VERDICTS:
                raise ValueError(f"verdict {str(verdict)[:32]!r}")
            return cls(
                verdict,
                tuple(d["matches"]),
                tuple(d["reasons"]),
                d.get("failure"),
                tuple(d.get("notes", ())),
                int(d.get("generation", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ServiceError(200, f"unexpected answer ({type(e).__name__}: {e})") from None

    @property
    def blocked(self) -> bool:
        """Anything but a clean keep: remove, review, or not checked at all."""
        return self.verdict != "keep"


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _unwrap(r: httpx.Response) -> Any:
    """200 with a JSON body; anything else (a redirect, an error, a page that is not JSON) is a ``ServiceError``."""
    if r.status_code != 200:
        try:
            detail = r.json().get("detail", r.text)
        except (ValueError, AttributeError):
            detail = r.text[:200]
        raise ServiceError(r.status_code, detail if isinstance(detail, str) else json.dumps(detail))
    try:
        return r.json()
    except ValueError:
        raise ServiceError(r.status_code, f"answer is not JSON ({r.headers.get('content-type', 'no type')})") from None


def _hashes_body(hashes: Mapping[str, str], thresholds: Mapping[str, Mapping[str, int]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"hashes": dict(hashes)}
    if thresholds:
        body["thresholds"] = thresholds
    return body


def _params(thresholds: Mapping[str, Mapping[str, int]] | None) -> dict[str, str]:
    return {"thresholds": json.dumps(thresholds)} if thresholds else {}


class Client:
    """Blocking client; one connection pool, reused (use as a context manager or call ``close``)."""

    def __init__(self, base_url: str, key: str, timeout: float = 30.0, **httpx_options: Any) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(key), timeout=timeout, **httpx_options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ServiceError(0, str(e) or type(e).__name__) from None
        return _unwrap(r)

    def check_image(self, data: bytes, thresholds: Mapping[str, Mapping[str, int]] | None = None) -> CheckResult:
        return CheckResult.of(
            self._call(
                "POST",
                "/v1/check/image",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                params=_params(thresholds),
            )
        )

    def check_hashes(
        self, hashes: Mapping[str, str], thresholds: Mapping[str, Mapping[str, int]] | None = None
    ) -> CheckResult:
        return CheckResult.of(self._call("POST", "/v1/check/hashes", json=_hashes_body(hashes, thresholds)))

    def check_many(self, items: Sequence[Mapping[str, str]]) -> list[CheckResult]:
        d = self._call("POST", "/v1/check/hashes", json={"items": [dict(h) for h in items]})
        results = d.get("results") if isinstance(d, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise ServiceError(200, "unexpected answer: no 'results' list of one result per item")
        return [CheckResult.of(r) for r in results]

    def check_url(self, url: str) -> CheckResult:
        return CheckResult.of(self._call("POST", "/v1/check/url", json={"url": url}))

    def check_text(self, text: str) -> CheckResult:
        return CheckResult.of(self._call("POST", "/v1/check/text", json={"text": text}))

    def banks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/banks")["banks"])

    def reload(self, bank: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/banks/{bank}/reload"))


class AsyncClient:
    """The same calls, awaitable; for upload handlers and generation servers that run on asyncio."""

    def __init__(self, base_url: str, key: str, timeout: float = 30.0, **httpx_options: Any) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(key), timeout=timeout, **httpx_options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ServiceError(0, str(e) or type(e).__name__) from None
        return _unwrap(r)

    async def check_image(self, data: bytes, thresholds: Mapping[str, Mapping[str, int]] | None = None) -> CheckResult:
        d = await self._call(
            "POST",
            "/v1/check/image",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            params=_params(thresholds),
        )
        return CheckResult.of(d)

    async def check_hashes(
        self, hashes: Mapping[str, str], thresholds: Mapping[str, Mapping[str, int]] | None = None
    ) -> CheckResult:
        return CheckResult.of(await self._call("POST", "/v1/check/hashes", json=_hashes_body(hashes, thresholds)))

    async def check_url(self, url: str) -> CheckResult:
        return CheckResult.of(await self._call("POST", "/v1/check/url", json={"url": url}))

    async def check_text(self, text: str) -> CheckResult:
        return CheckResult.of(await self._call("POST", "/v1/check/text", json={"text": text}))

    async def banks(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/v1/banks"))["banks"])

    async def reload(self, bank: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/v1/banks/{bank}/reload"))
