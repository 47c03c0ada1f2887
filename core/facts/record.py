"""One user's record and what Replicate says of it: the User page's facts.

``read_user_record`` reads the app's ``users`` and ``user_models`` rows (the only read of
them by id); ``read_replicate_parts`` asks Replicate about the row (one model read, one
versions read, one training read at most), each failure kept with its part as a
``Problem``; ``user_detail_of`` puts the two together (pure), so a page can read the row
on every run and Replicate's answers once in a while.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, select

from core.drift.facts import ModelFacts
from core.errors import (
    DataRejected,
    NotFound,
    Problem,
    ProblemKind,
    ReplicateError,
    ReplicateNotFound,
)
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import ModelVersion, ReplicateModel, Training, is_training_id
from core.schema import user_models, users
from core.versions import VersionComparison, compare_versions


@dataclass(frozen=True)
class UserRecord:
    """The database part of a user: the ``users`` row and their ``user_models`` row.

    Both are name→value mappings in table order, values exactly as stored.
    """

    user_id: str
    user: Mapping[str, Any]
    model_row: Mapping[str, Any] | None


@dataclass(frozen=True)
class UserDetail:
    """Everything the User page shows. A ``*_problem`` says why a section has no facts
    (nothing stored, not on Replicate, or Replicate failing); the other sections still show.
    """

    record: UserRecord
    model_id: str | None
    model: ReplicateModel | None
    model_problem: Problem | None
    versions: tuple[ModelVersion, ...]
    versions_problem: Problem | None
    training_id: str | None
    training: Training | None
    training_problem: Problem | None
    comparison: VersionComparison

    def known_models(self) -> dict[str, ModelFacts]:
        """The row's model as this detail read it, for the diagnosis not to read it again
        (empty when it was not read)."""
        found_parts = ReplicateParts(
            self.model,
            self.model_problem,
            self.versions,
            self.versions_problem,
            self.training,
            self.training_problem,
        )
        key = self.model_id.strip() if self.model_id is not None else None
        found = found_parts.model_facts(key)
        return {} if found is None or key is None else {key: found}

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def latest_version(self) -> ModelVersion | None:
        if self.model is not None and self.model.latest_version is not None:
            return self.model.latest_version
        return self.versions[0] if self.versions else None


def read_user_record(conn: Connection, user_id: str) -> UserRecord:
    """The user's rows, or ``NotFound`` saying how to find the right id."""
    wanted = user_id.strip()
    user = (
        conn.execute(select(users).where(users.c.id == wanted)).mappings().first()
        if wanted
        else None
    )
    if user is None:
        raise NotFound(
            f"No user with id {user_id!r} in the app's database. Search the Users page by "
            "email, trigger word or model id and open the user from the results."
        )
    model_row = (
        conn.execute(select(user_models).where(user_models.c.user_id == wanted)).mappings().first()
    )
    return UserRecord(
        user_id=wanted,
        user=MappingProxyType(dict(user)),
        model_row=MappingProxyType(dict(model_row)) if model_row is not None else None,
    )


def load_user_detail(conn: Connection, gateway: ReplicateGateway, user_id: str) -> UserDetail:
    """The user's rows plus what Replicate says about their model, versions and training.

    Raises ``NotFound`` for an unknown user. Replicate failures and malformed stored values
    are reported per section in the result, never raised. (Callers that want to free the
    connection before the HTTP calls use ``read_user_record`` then ``replicate_facts``.)
    """
    return replicate_facts(gateway, read_user_record(conn, user_id))


def _text(value: Any) -> str | None:
    """A stored varchar as text; blanks count as nothing stored."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


@dataclass(frozen=True)
class ReplicateParts:
    """What Replicate says of a user's row: its model, the model's versions and the row's
    training, each with why it is missing (``Problem``)."""

    model: ReplicateModel | None
    model_problem: Problem | None
    versions: tuple[ModelVersion, ...]
    versions_problem: Problem | None
    training: Training | None
    training_problem: Problem | None

    def model_facts(self, model_id: str | None) -> ModelFacts | None:
        """The model as the diagnosis reads it (None when it was not read), so that the
        page's diagnosis does not ask Replicate again."""
        if model_id is None:
            return None
        if self.model is not None:
            if self.versions_problem is not None:
                return None  # the versions could not be read: the diagnosis tries itself
            return ModelFacts(model_id, found=True, versions=self.versions)
        gone = self.model_problem is not None and self.model_problem.kind is ProblemKind.NOT_FOUND
        return ModelFacts(model_id, found=False) if gone else None


def read_replicate_parts(gateway: ReplicateGateway, record: UserRecord) -> ReplicateParts:
    """Replicate's answers for ``record``: one model read, one versions read, one training
    read at most."""
    row = record.model_row or {}
    model_id = _text(row.get("replicate_model_id"))
    model, model_problem, versions, versions_problem = _model_facts(gateway, model_id, record)
    training, training_problem = _training_facts(gateway, _text(row.get("training_id")), record)
    return ReplicateParts(
        model, model_problem, versions, versions_problem, training, training_problem
    )


def replicate_facts(gateway: ReplicateGateway, record: UserRecord) -> UserDetail:
    """Complete ``record`` with the Replicate model, its versions and the row's training."""
    return user_detail_of(record, read_replicate_parts(gateway, record))


def user_detail_of(record: UserRecord, parts: ReplicateParts) -> UserDetail:
    """The User page's facts from the row read now and Replicate's answers (pure)."""
    row = record.model_row or {}
    model_id = _text(row.get("replicate_model_id"))
    stored = _text(row.get("replicate_version_id"))
    model, versions = parts.model, parts.versions
    latest = (
        model.latest_version.id if model is not None and model.latest_version is not None else None
    )
    comparison = compare_versions(
        stored,
        latest=latest,
        version_ids=[version.id for version in versions]
        if parts.versions_problem is None
        else None,
    )
    return UserDetail(
        record=record,
        model_id=model_id,
        model=model,
        model_problem=parts.model_problem,
        versions=versions,
        versions_problem=parts.versions_problem,
        training_id=_text(row.get("training_id")),
        training=parts.training,
        training_problem=parts.training_problem,
        comparison=comparison,
    )


def _model_facts(
    gateway: ReplicateGateway, model_id: str | None, record: UserRecord
) -> tuple[ReplicateModel | None, Problem | None, tuple[ModelVersion, ...], Problem | None]:
    if record.model_row is None:
        problem = Problem(
            ProblemKind.ABSENT, "This user has no user_models row: they never started a training."
        )
        return None, problem, (), problem
    if model_id is None:
        problem = Problem(
            ProblemKind.ABSENT,
            "No replicate_model_id is stored, so there is no model to compare with. "
            "Look for the user's trainings on Replicate to find their model.",
        )
        return None, problem, (), problem
    try:
        model = gateway.get_model(model_id.strip())
    except (ReplicateError, DataRejected) as exc:
        failed = Problem.of(exc)
        return None, failed, (), Problem(failed.kind, f"Versions not read: {exc}")
    if model is None:
        problem = Problem(
            ProblemKind.NOT_FOUND,
            f"Model {model_id} does not exist on Replicate (404). The row points at a "
            "deleted or never-created model; find the user's real model from their "
            "trainings.",
        )
        return None, problem, (), problem
    try:
        versions = tuple(gateway.list_versions(model_id.strip()))
    except ReplicateError as exc:
        return model, None, (), Problem.of(exc)
    return model, None, versions, None


def _training_facts(
    gateway: ReplicateGateway, training_id: str | None, record: UserRecord
) -> tuple[Training | None, Problem | None]:
    if record.model_row is None:
        return None, Problem(ProblemKind.ABSENT, "No user_models row, so no training is recorded.")
    if training_id is None:
        return None, Problem(
            ProblemKind.ABSENT,
            "No training_id is stored (the app clears it when a retrain starts "
            "over, and sets it when Replicate accepts the training).",
        )
    if not is_training_id(training_id.strip()):
        return None, Problem(
            ProblemKind.REJECTED, f"training_id {training_id!r} is not a Replicate training id."
        )
    try:
        return gateway.get_training(training_id.strip()), None
    except ReplicateNotFound:
        return None, Problem(
            ProblemKind.NOT_FOUND,
            f"Training {training_id} is not on Replicate (404): it was made with "
            "another account or token, or deleted.",
        )
    except ReplicateError as exc:
        return None, Problem.of(exc)
