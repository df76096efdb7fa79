"""Errors that carry their own exit code, so the CLI maps them without guessing.

Configuration problems fail fast (before the first image is read); data problems are recorded per item and never
raised through the pipeline.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED_ITEMS = 1  # the job ran, but some inputs could not be processed (or a verification failed)
    USER_ERROR = 2  # wrong flag, bad file, malformed list: the user can fix it
    EXTERNAL = 3  # a dependency or the environment let us down


class CleansetError(Exception):
    """Base of every error cleanset raises on purpose."""

    exit_code: ExitCode = ExitCode.USER_ERROR


class UserError(CleansetError):
    exit_code = ExitCode.USER_ERROR


class InputFormatError(UserError):
    """Malformed input; the message names the file and, where it has one, the line or field."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class ExternalError(CleansetError):
    exit_code = ExitCode.EXTERNAL


class VerificationError(CleansetError):
    exit_code = ExitCode.FAILED_ITEMS
