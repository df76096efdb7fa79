"""A generation gate: an image tool calls it before it publishes what it made, and before it generates.

``Gate`` wraps any callable that makes images (a diffusers pipeline's output step, an upload handler, a stand-in
that draws): the prompt is checked first, each image after, and anything the checker does not call ``keep``
(remove, review, or not checked at all) raises ``Blocked`` with the reason. The checker is the service
(``ServiceChecker``) or the library in this process (``LocalChecker``); both answer from ``assess``, so they block
the same things.

An image is handed on as bytes exactly as checked: the gate never re-encodes, and a blocked image is not written,
shown or returned.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cleanset.api import Banks, Check
from cleanset.client import CheckResult, Client
from cleanset.errors import CleansetError

__all__ = ["Blocked", "Checker", "Gate", "LocalChecker", "ServiceChecker", "Verdict"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the checker said, reduced to what a gate needs: the verdict and why (never a list value)."""

    verdict: str | None
    reasons: tuple[str, ...]
    failure: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict == "keep"

    def why(self) -> str:
        if self.failure:
            return f"not checked: {self.failure}"
        return "; ".join(self.reasons) or f"verdict {self.verdict}"


class Blocked(CleansetError):
    """The gate refused a prompt or an image; ``what`` is ``prompt`` or ``image[i]``."""

    def __init__(self, what: str, verdict: Verdict) -> None:
        self.what = what
        self.verdict = verdict
        super().__init__(f"blocked {what}: {verdict.verdict or 'unchecked'} ({verdict.why()})")


class Checker(Protocol):
    def check_image(self, data: bytes) -> Verdict: ...
    def check_prompt(self, text: str) -> Verdict: ...


def _from_check(c: Check) -> Verdict:
    return Verdict(c.verdict, c.reasons, None if c.failure is None else f"{c.failure.code}: {c.failure.detail}")


def _from_result(r: CheckResult) -> Verdict:
    f = r.failure
    return Verdict(r.verdict, r.reasons, None if f is None else f"{f.get('code')}: {f.get('detail')}")


class LocalChecker:
    """The library in this process: ``api.check_bytes`` and ``api.check_text`` over banks opened once."""

    def __init__(self, banks: Banks, prompts: bool = True) -> None:
        self.banks = banks
        self.prompts = prompts

    def check_image(self, data: bytes) -> Verdict:
        from cleanset import api

        return _from_check(api.check_bytes(data, self.banks))

    def check_prompt(self, text: str) -> Verdict:
        from cleanset import api

        if not self.prompts:
            return Verdict("keep", ("prompt checks off",))
        return _from_check(api.check_text(text))


class ServiceChecker:
    """`cleanset serve` over HTTP. A service that cannot be reached or refuses blocks (fails closed)."""

    def __init__(self, client: Client, prompts: bool = True) -> None:
        self.client = client
        self.prompts = prompts

    def _ask(self, call: Callable[[], CheckResult]) -> Verdict:
        try:
            return _from_result(call())
        except CleansetError as e:
            return Verdict(None, (), str(e))
        except Exception as e:  # anything unforeseen (a proxy's page, a bug) blocks too: never an escape, never keep
            return Verdict(None, (), f"cleanset service: unexpected {type(e).__name__}: {e}")

    def check_image(self, data: bytes) -> Verdict:
        return self._ask(lambda: self.client.check_image(data))

    def check_prompt(self, text: str) -> Verdict:
        if not self.prompts:
            return Verdict("keep", ("prompt checks off",))
        return self._ask(lambda: self.client.check_text(text))


def to_bytes(image: Any) -> bytes:
    """Bytes as made; a Pillow image is saved as PNG (lossless: what is checked is what is published)."""
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if hasattr(image, "save"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"the generator returned {type(image).__name__}; expected bytes or a PIL image")


class Gate(Generic[T]):
    """``Gate(generate, checker)(prompt, ...)``: check the prompt, call ``generate(prompt, ...)``, check every image
    it returns (one, or a list), and return the images' bytes, or raise ``Blocked`` naming the first refusal."""

    def __init__(self, generate: Callable[..., T | Sequence[T]], checker: Checker) -> None:
        self.generate = generate
        self.checker = checker

    def check_prompt(self, prompt: str) -> None:
        v = self.checker.check_prompt(prompt)
        if not v.allowed:
            raise Blocked("prompt", v)

    def check_images(self, images: Sequence[Any]) -> list[bytes]:
        out = []
        for i, im in enumerate(images):
            data = to_bytes(im)
            v = self.checker.check_image(data)
            if not v.allowed:
                raise Blocked(f"image[{i}]", v)
            out.append(data)
        return out

    def __call__(self, prompt: str, *args: Any, **kwargs: Any) -> list[bytes]:
        self.check_prompt(prompt)
        made = self.generate(prompt, *args, **kwargs)
        images = list(made) if isinstance(made, list | tuple) else [made]
        return self.check_images(images)
