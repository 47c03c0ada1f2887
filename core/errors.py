"""The console's one small error tree.

Pages catch ``DashboardError`` and show its message, which always says what to do
next; anything else is a bug and propagates. Library errors (httpx, replicate,
SQLAlchemy) are translated into this tree at the boundary that saw them.

    DashboardError
    ├── ConfigError              settings missing or contradictory
    ├── DatabaseUnavailable      the database could not be reached or stopped answering
    ├── PermissionDenied         the actor's role does not allow this write or paid call
    ├── Conflict                 the row changed since it was read; a duplicate submission
    ├── NotFound                 the thing asked for does not exist (user, model, training)
    ├── DataRejected             input that cannot be used (malformed row, broken photo/ZIP)
    └── ReplicateError           Replicate (or the sandbox) did not do what was asked
        ├── ReplicateUnavailable     outage, 5xx, timeout, network error or a download that
        │   │                        may work later (gone for now, too slow), after retries
        │   └── CreateOutcomeUnknown a paid create may have been accepted: check, don't resend
        ├── RateLimited              still throttled (429) after retries
        ├── Unauthorized             the token was refused (401/403)
        ├── ReplicateNotFound        404 (also a NotFound)
        ├── InvalidVersion           422: the version does not exist or is not ours
        └── InvalidInput             422: the input failed validation

A part of a page that could not be read carries a ``Problem``: the message, which reads
as text everywhere, and its ``kind`` (``Problem.of`` an error), so a page decides how to
show it (Replicate down is said once, at the top) by kind, never by matching the text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class DashboardError(Exception):
    """Base of every error the console shows to staff; ``str()`` is the actionable message."""


class ConfigError(DashboardError):
    """Settings are missing or contradictory."""


class DatabaseUnavailable(DashboardError):
    """The app's database or schema ops could not be reached, or the connection broke."""


class PermissionDenied(DashboardError):
    """The acting staff member's role does not allow the action."""


class Conflict(DashboardError):
    """The data changed since it was read, or the same submission arrived twice."""


class NotFound(DashboardError):
    """The user, model, version, training or prediction does not exist."""


class DataRejected(DashboardError):
    """Input that cannot be used as given: a malformed row, a broken photo or ZIP."""


class ReplicateError(DashboardError):
    """Replicate did not do what was asked.

    ``status`` is the HTTP status when there was a response (None for network errors).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReplicateUnavailable(ReplicateError):
    """Replicate is down, erroring or too slow, and retries within the time budget failed."""


class CreateOutcomeUnknown(ReplicateUnavailable):
    """A paid create was sent but no usable answer came back: it may exist. Never resend
    blindly. ``created_id`` is the training's, prediction's or file's id when Replicate's
    answer said that much (it was accepted, but the rest could not be read)."""

    def __init__(
        self, message: str, *, status: int | None = None, created_id: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.created_id = created_id


class RateLimited(ReplicateError):
    """Replicate kept answering 429 until the retry budget ran out."""

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Unauthorized(ReplicateError):
    """The Replicate token is missing, wrong or lacks permission."""


class InvalidVersion(ReplicateError):
    """The version id does not exist, or this account may not use it."""


class InvalidInput(ReplicateError):
    """Replicate rejected the input (a required field missing, a value out of range)."""


class ReplicateNotFound(ReplicateError, NotFound):
    """Replicate answered 404 for a model, version, training, prediction or file."""


class ProblemKind(StrEnum):
    """What kind of trouble a ``Problem`` is, for the page to decide how to show it."""

    REPLICATE_DOWN = "replicate down"  # an outage, throttling: try again later
    REPLICATE = "replicate"  # Replicate refused or answered something unusable
    NOT_FOUND = "not found"
    CONFLICT = "conflict"  # changed since it was read: preview again
    REJECTED = "rejected"  # the data cannot be used as it is
    DENIED = "denied"
    DATABASE = "database"
    ABSENT = "absent"  # nothing to read (no row, no id stored): not an error
    OTHER = "other"  # a message whose kind nobody said


class Problem(str):
    """A message with its kind: a ``str`` (shown, compared and searched as the message)
    that also says what kind of trouble it is."""

    kind: ProblemKind

    def __new__(cls, kind: ProblemKind, message: str) -> Problem:
        made = super().__new__(cls, message)
        made.kind = kind
        return made

    def __getnewargs__(self) -> tuple[Any, ...]:
        # Cached page data is pickled: rebuild with the kind, not from the text alone.
        return (self.kind, str(self))

    @classmethod
    def said(cls, message: str) -> Problem:
        """``message`` as a problem: itself when it is one, else of no known kind."""
        return message if isinstance(message, Problem) else cls(ProblemKind.OTHER, message)

    @classmethod
    def of(cls, exc: DashboardError) -> Problem:
        """The problem an error is, with its message."""
        return cls(_kind_of(exc), str(exc))


def _kind_of(exc: DashboardError) -> ProblemKind:
    if isinstance(exc, ReplicateUnavailable):
        return ProblemKind.REPLICATE_DOWN
    if isinstance(exc, NotFound):
        return ProblemKind.NOT_FOUND
    if isinstance(exc, ReplicateError):
        return ProblemKind.REPLICATE
    if isinstance(exc, Conflict):
        return ProblemKind.CONFLICT
    if isinstance(exc, DataRejected):
        return ProblemKind.REJECTED
    if isinstance(exc, PermissionDenied):
        return ProblemKind.DENIED
    if isinstance(exc, DatabaseUnavailable):
        return ProblemKind.DATABASE
    return ProblemKind.OTHER
