"""Errors a user can act on. Each carries the exit status of SPEC §6."""

from __future__ import annotations


class VantaError(Exception):
    """Base class: a one-line message for the user."""

    exit_code = 1


class InputError(VantaError):
    """Bad usage or invalid input (exit 2). Nothing was written."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        parts = [p for p in (source, field) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class Refused(VantaError):
    """A refused operation (exit 1): the request is well-formed but cannot be done now."""

    exit_code = 1


class CheckFailed(VantaError):
    """A check failed (verify, replay): exit 1."""

    exit_code = 1


class HomeMissing(VantaError):
    exit_code = 2


class KeystoreError(VantaError):
    exit_code = 2


class OutputError(VantaError):
    """The journal committed, but an output (state files, reports, a notification) could
    not be written, or a command stopped part-way: exit 3 (SPEC §6)."""

    exit_code = 3
