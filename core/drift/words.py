"""Findings in staff's words: one sentence per finding, built from its evidence.

A finding's evidence is a JSON-safe mapping of snake_case keys, which engineers read and
the scans store. Support reads ``evidence_sentence``: one template per code (``SENTENCES``)
that says what the evidence shows, naming versions the way every page does
(``core.versions.version_name``: "v2 · trained 3 Oct") and leaving ids out; the page
shows the ids beside the sentence (``evidence_ids``) and the raw evidence for engineers.

Pure: a finding and the model's versions in, text out. Evidence from an older scan may
lack a key: a template then says less, never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.drift.findings import Finding
from core.gateway.values import ModelVersion
from core.versions import normalise_version, short_version, version_name

# ``this_year`` for texts that are stored (a fix, a repair's explanation): the year is
# always said, so the text stays true next year and does not depend on the clock.
ALWAYS_THE_YEAR = 0

# The evidence keys that hold ids, and what to call each beside the sentence.
ID_LABELS: Mapping[str, str] = {
    "stored_version": "stored version",
    "latest_version": "latest version",
    "version": "version",
    "last_good_version": "last good version",
    "output_version": "version the training made",
    "model_id": "model",
    "training_id": "training",
    "stored_training_id": "training that made the stored version",
    "latest_training_id": "training that made the latest version",
    "previous_training_id": "previous training",
    "last_good_training_id": "last good training",
    "latest_succeeded_training_id": "latest successful training",
    "identified_by_training_id": "training that made the stored version",
    "belongs_to_user_id": "user it belongs to",
    "user_id": "user",
    "previous_version": "version before the retrain",
    "new_version": "version the retrain made",
}


@dataclass(frozen=True)
class Namer:
    """Names versions among one model's versions, as staff call them."""

    versions: Sequence[ModelVersion] = ()
    this_year: int | None = None

    def version(self, version_id: object) -> str:
        """ "v2 · trained 3 Oct", or "version 5c7d1e2f3a4b…" when it is not among them."""
        if not isinstance(version_id, str) or normalise_version(version_id) is None:
            return "no version"
        named = version_name(version_id, self.versions, this_year=self.this_year)
        if named == short_version(normalise_version(version_id)):
            return f"version {named}…"
        return named


def namer_for_stored_text(versions: Sequence[ModelVersion]) -> Namer:
    """The naming used in texts a finding or a repair stores: the year always said."""
    return Namer(tuple(versions), ALWAYS_THE_YEAR)


def _said(value: object, empty: str = "nothing") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return empty
    return str(value)


def _quoted(value: object) -> str:
    return "nothing" if value is None else f"“{value}”"


def _day(value: object) -> str | None:
    """An ISO timestamp from the evidence as "3 Oct 2026"; None when there is none."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return f"{when.day} {when:%b %Y}"


def _plural(count: object, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _version_format(evidence: Mapping[str, Any], names: Namer) -> str:
    stored = evidence.get("stored_version")
    if stored is None or not str(stored).strip():
        return (
            "The row says the training is completed but stores no version, so the app has "
            "nothing to generate with."
        )
    shown = short_version(str(stored), 40) + ("…" if len(str(stored)) > 40 else "")
    sent = evidence.get("normalised_version")
    said = (
        f"The row stores the version as {_quoted(shown)}, not as the version id alone; "
        f"the app sends {names.version(sent)}."
    )
    member = evidence.get("is_version_of_model")
    if member is False:
        said += " That is not a version of the user's model."
    latest = evidence.get("latest_version")
    if latest and latest != sent:
        said += f" The model's latest is {names.version(latest)}."
    return said


def _version_not_in_model(evidence: Mapping[str, Any], names: Namer) -> str:
    said = (
        f"The app generates with {_said(evidence.get('identified_as'), 'an unknown version')},"
        " which is not a version of the user's own model."
    )
    if evidence.get("belongs_to_user_id"):
        said += " It belongs to another user, so this user's images are made with their face."
    latest = evidence.get("latest_version")
    if latest:
        said += f" The user's own model's latest is {names.version(latest)}."
    return said


def _stale_version(evidence: Mapping[str, Any], names: Namer) -> str:
    behind = evidence.get("versions_behind")
    how_far = f" ({_plural(behind, 'version')} behind)" if isinstance(behind, int) else ""
    return (
        f"The row stores {names.version(evidence.get('normalised_version'))}; the model's "
        f"latest is {names.version(evidence.get('latest_version'))}{how_far}."
    )


def _trigger_word(evidence: Mapping[str, Any], names: Namer) -> str:
    which = (
        "the training that made the stored version"
        if evidence.get("training_is") == "produced the stored version"
        else "the user's latest successful training"
    )
    stored = evidence.get("stored_trigger_word")
    row = (
        "The row has no trigger word"
        if stored is None
        else f"The row's trigger word is {_quoted(stored)}"
    )
    return (
        f"{row}, but {which} taught the model {_quoted(evidence.get('trained_trigger_word'))}; "
        "prompts with another word do not bring out the user's face."
    )


def _model_id_missing(evidence: Mapping[str, Any], names: Namer) -> str:
    if evidence.get("training_status") == "completed":
        why = "the row says the training is completed"
    elif evidence.get("training_id"):
        why = "the row names a training"
    else:
        why = f"the user has {_plural(evidence.get('training_count'), 'training')}"
    latest = evidence.get("latest_destination")
    where = (
        f" The user's latest successful training went to {latest}."
        if latest
        else " No successful training says which model it went to."
    )
    return f"The row names no model, though {why}.{where}"


def _model_not_found(evidence: Mapping[str, Any], names: Namer) -> str:
    model = evidence.get("model_id")
    others = [str(other) for other in evidence.get("ledger_destinations") or () if other != model]
    said = f"Replicate says the model the row names, {_said(model)}, does not exist."
    if others:
        said += f" The user's trainings also went to {', '.join(others)}."
    return said


def _version_lost(evidence: Mapping[str, Any], names: Namer) -> str:
    finished = _day(evidence.get("last_good_completed_at"))
    when = f" (finished {finished})" if finished else ""
    said = (
        f"The row is {_quoted(evidence.get('training_status'))} and stores no version, so "
        f"the user cannot generate. Their last successful training{when} made "
        f"{names.version(evidence.get('last_good_version'))}, which still exists."
    )
    if evidence.get("failure_reason"):
        said += f" The app noted: {_quoted(evidence.get('failure_reason'))}."
    return said


def _status_out_of_sync(evidence: Mapping[str, Any], names: Namer) -> str:
    finished = _day(evidence.get("training_completed_at"))
    when = f" on {finished}" if finished else ""
    said = (
        f"The row says {_quoted(evidence.get('row_status'))}, but Replicate says the "
        f"training {_said(evidence.get('replicate_status'), 'has an unknown status')}{when}; "
        f"the row should say {_quoted(evidence.get('expected_row_status'))}."
    )
    if evidence.get("training_error"):
        said += f" Replicate's error: {_quoted(evidence.get('training_error'))}."
    return said


def _weights_url(evidence: Mapping[str, Any], names: Namer) -> str:
    version = names.version(evidence.get("version"))
    if not evidence.get("stored_weights_url"):
        return (
            f"The row stores no weights file, though the training that made {version} "
            "produced one; the app sends the weights with every image."
        )
    said = f"The row's weights file is not the one the training that made {version} produced."
    if evidence.get("looks_constructed"):
        said += (
            " It is an address built from the version id, as the app's sync does, which "
            "is not where Replicate put the weights."
        )
    return said


def _duplicate_models(evidence: Mapping[str, Any], names: Namer) -> str:
    by_model = evidence.get("trainings_by_destination") or {}
    parts = [
        f"{model} ({_plural(len(trainings) if isinstance(trainings, list) else '?', 'training')})"
        for model, trainings in dict(by_model).items()
    ]
    count = len(parts) or len(evidence.get("destinations") or ())
    said = f"The user's trainings went to {_plural(count, 'model')}"
    said += f": {', '.join(parts)}." if parts else "."
    said += f" The row uses {_said(evidence.get('model_id'), 'no model')}"
    latest = evidence.get("latest_destination")
    return said + (f"; the latest successful training went to {latest}." if latest else ".")


def _photo_count(summary: object) -> object:
    return summary.get("image_count") if isinstance(summary, Mapping) else None


def _dataset_shrank(evidence: Mapping[str, Any], names: Namer) -> str:
    now, before = (
        _photo_count(evidence.get("dataset")),
        _photo_count(evidence.get("previous_dataset")),
    )
    said = (
        f"The model's latest version, {names.version(evidence.get('latest_version'))}, was "
        f"trained on {_plural(_said(now, '?'), 'photo')}"
    )
    said += f"; the training before it used {before}." if before is not None else "."
    reasons = [str(reason) for reason in evidence.get("reasons") or ()]
    return said + (f" That is {' and '.join(reasons)}." if reasons else "")


def _dataset_degraded(evidence: Mapping[str, Any], names: Namer) -> str:
    reasons = [str(reason) for reason in evidence.get("reasons") or ()]
    worse = "; ".join(reasons) if reasons else "see the measures below"
    return (
        f"The photos behind the model's latest version, "
        f"{names.version(evidence.get('latest_version'))}, are worse than the previous "
        f"training's: {worse}."
    )


def _pair(value: object) -> tuple[object, object]:
    if isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    return None, None


def _trainer_changed(evidence: Mapping[str, Any], names: Namer) -> str:
    (model_before, model_now) = _pair(evidence.get("trainer_model"))
    if model_before != model_now:
        return (
            f"The user's last successful training used the trainer {_said(model_now, '?')}; "
            f"the one before used {_said(model_before, '?')}."
        )
    (version_before, version_now) = _pair(evidence.get("trainer_version"))
    return (
        f"The user's last two successful trainings used different versions of the trainer "
        f"{_said(model_now, '?')} ({short_version(str(version_before))}… before, "
        f"{short_version(str(version_now))}… now)."
    )


def _parameter(name: str) -> str:
    """A training input's name in words: ``learning_rate`` as "learning rate"."""
    return name.replace("_", " ")


def _params_changed(evidence: Mapping[str, Any], names: Namer) -> str:
    diff = evidence.get("diff") or {}
    changes = [
        f"{_parameter(str(name))} {_said(before, 'not set')} → {_said(after, 'not set')}"
        for name, (before, after) in ((name, _pair(values)) for name, values in dict(diff).items())
    ]
    said = "The last two successful trainings were sent different settings"
    said += f": {', '.join(changes)}." if changes else "."
    photos_before, photos_now = _pair(evidence.get("image_count"))
    if photos_before is not None and photos_now is not None:
        said += f" Photos: {photos_before} → {photos_now}."
    return said


def _retrain_regressed(evidence: Mapping[str, Any], names: Namer) -> str:
    said = (
        f"The watch compared {names.version(evidence.get('previous_version'))} with the "
        f"retrain's {names.version(evidence.get('new_version'))} on the app's own input: "
        "the new version is worse"
    )
    reason = evidence.get("reason")
    return said + (f". {reason}" if isinstance(reason, str) and reason.strip() else ".")


def _scan_error(evidence: Mapping[str, Any], names: Namer) -> str:
    return f"This user could not be checked: {_said(evidence.get('message'), 'no reason given')}"


Sentence = Callable[[Mapping[str, Any], Namer], str]

SENTENCES: Mapping[str, Sentence] = {
    "VERSION_FORMAT": _version_format,
    "VERSION_NOT_IN_MODEL": _version_not_in_model,
    "STALE_VERSION": _stale_version,
    "TRIGGER_WORD_MISMATCH": _trigger_word,
    "MODEL_ID_MISSING": _model_id_missing,
    "MODEL_NOT_FOUND": _model_not_found,
    "VERSION_LOST": _version_lost,
    "STATUS_OUT_OF_SYNC": _status_out_of_sync,
    "WEIGHTS_URL_MISMATCH": _weights_url,
    "DUPLICATE_MODELS": _duplicate_models,
    "DATASET_SHRANK": _dataset_shrank,
    "DATASET_DEGRADED": _dataset_degraded,
    "TRAINER_CHANGED": _trainer_changed,
    "PARAMS_CHANGED": _params_changed,
    "RETRAIN_REGRESSED": _retrain_regressed,
    "SCAN_ERROR": _scan_error,
}
NO_SENTENCE = "The evidence below shows what was found."


def evidence_sentence(finding: Finding, names: Namer | None = None) -> str:
    """What ``finding``'s evidence shows, in one or two sentences without ids."""
    sentence = SENTENCES.get(finding.code)
    if sentence is None:
        return NO_SENTENCE
    return sentence(finding.evidence, names or Namer())


def evidence_ids(finding: Finding) -> list[tuple[str, str]]:
    """The ids the evidence names, as (what it is, the id), to show beside the sentence."""
    return [
        (label, str(finding.evidence[key]))
        for key, label in ID_LABELS.items()
        if isinstance(finding.evidence.get(key), str) and str(finding.evidence[key]).strip()
    ]
