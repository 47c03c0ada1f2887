"""What every check needs, derived once from the facts: the stored hash, the ledger's
trainings behind the stored and the latest versions, the model's versions.

Reading rules (the places where the vocabulary leaves room, decided here once):
- The stored hash is the app's reading of ``replicate_version_id`` (``normalise_version``:
  text after the last ``:``, stripped) lower-cased; a value that is empty or only
  whitespace counts as "no version stored".
- The model's versions are known only when the row names a model and Replicate's answer
  for that model is in the facts and is not a 404; otherwise every check that needs them
  is skipped (MODEL_ID_MISSING / MODEL_NOT_FOUND / the scan's SCAN_ERROR say why).
- A version "came from" a training when the training's ``output_version`` hash equals it;
  the ledger only holds this user's trainings, so such a training is "of this user".
"""

from __future__ import annotations

from dataclasses import dataclass

from core.drift.codes import RepairAction
from core.drift.facts import AppRow, ModelFacts, TrainingRecord, UserFacts
from core.drift.findings import Fix
from core.drift.words import Namer, namer_for_stored_text
from core.versions import VersionComparison, compare_versions, normalise_version


@dataclass(frozen=True)
class Context:
    """The facts of one user, read the way every check reads them."""

    facts: UserFacts
    row: AppRow
    model_id: str | None  # the row's model id, stripped; None when empty
    model: ModelFacts | None  # Replicate's answer for ``model_id``, None when not fetched
    stored_hash: str | None  # normalised, lower-cased; None when no version is stored
    comparison: VersionComparison | None  # None when the model's versions are unknown
    trainings: tuple[TrainingRecord, ...]  # the ledger, oldest first
    succeeded: tuple[TrainingRecord, ...]  # the succeeded ones, oldest first

    @property
    def versions_known(self) -> bool:
        return self.comparison is not None

    @property
    def latest_version(self) -> str | None:
        """The row's model's newest version id (None when unknown or the model has none)."""
        return self.comparison.latest if self.comparison is not None else None

    def producer(self, version_id: str | None) -> TrainingRecord | None:
        """The newest training of this user whose output is ``version_id``."""
        if version_id is None:
            return None
        matches = [record for record in self.trainings if record.version_hash == version_id]
        return matches[-1] if matches else None

    @property
    def stored_producer(self) -> TrainingRecord | None:
        return self.producer(self.stored_hash)

    @property
    def latest_producer(self) -> TrainingRecord | None:
        """The succeeded training of this user that made the model's latest version."""
        record = self.producer(self.latest_version)
        return record if record is not None and record.succeeded else None

    @property
    def last_succeeded(self) -> TrainingRecord | None:
        return self.succeeded[-1] if self.succeeded else None

    def training(self, training_id: str | None) -> TrainingRecord | None:
        """The ledger's record of ``training_id``, if the ledger has it."""
        if training_id is None:
            return None
        return next((record for record in self.trainings if record.id == training_id), None)

    def succeeded_before(self, record: TrainingRecord) -> TrainingRecord | None:
        """The succeeded training just before ``record`` in the ledger's order."""
        if record not in self.succeeded:
            return None
        position = self.succeeded.index(record)
        return self.succeeded[position - 1] if position > 0 else None

    @property
    def destinations(self) -> tuple[str, ...]:
        """The models the user's trainings added versions to, in order of first use."""
        seen: dict[str, None] = {}
        for record in self.trainings:
            if record.destination is not None:
                seen.setdefault(record.destination, None)
        return tuple(seen)

    @property
    def latest_destination(self) -> str | None:
        destinations = [record.destination for record in self.succeeded if record.destination]
        return destinations[-1] if destinations else None

    @property
    def names(self) -> Namer:
        """Names of the row's model's versions for a fix's text ("v3 · trained 1 Dec
        2026"; a short hash when the versions are unknown)."""
        return namer_for_stored_text(self.model.versions if self.model is not None else ())

    def repoint_fix(self, why: str) -> Fix:
        """``repoint_latest`` when the latest version and its training's weights are known;
        otherwise the next step that makes it possible. ``why`` opens the text."""
        latest, record = self.latest_version, self.latest_producer
        if latest is not None and record is not None:
            return Fix(
                RepairAction.REPOINT_LATEST,
                f"{why} Point the app at {self.names.version(latest)}, the model's newest "
                "version, with the weights file of the user's training that made it.",
            )
        if latest is None:
            return Fix(
                None,
                f"{why} The user's model has no version to point the app at; retrain into "
                "it with the previous photos.",
            )
        return Fix(
            None,
            f"{why} The training that made the newest version, "
            f"{self.names.version(latest)}, is not in this user's training history, so "
            "its weights file is unknown: find that training on Replicate before pointing "
            "the app at it.",
        )


def build_context(facts: UserFacts) -> Context:
    """Read ``facts`` once for all the checks."""
    row = facts.row
    model_id = row.model_id
    model = facts.model_facts(model_id)
    stored_hash = normalise_version(row.replicate_version_id)
    comparison = None
    if model is not None and model.found:
        latest = model.latest
        comparison = compare_versions(
            stored_hash, latest=latest.id if latest else None, version_ids=model.version_ids
        )
    trainings = facts.trainings
    return Context(
        facts=facts,
        row=row,
        model_id=model_id,
        model=model,
        stored_hash=stored_hash,
        comparison=comparison,
        trainings=trainings,
        succeeded=tuple(record for record in trainings if record.succeeded),
    )
