"""Checks of the row's model and version against Replicate: one function per code.

Each takes the ``Context`` and returns a ``Finding`` or None. Choices where the
vocabulary leaves room:
- VERSION_FORMAT and VERSION_NOT_IN_MODEL both judge the normalised hash, so a colon-form
  value naming the model's latest gives VERSION_FORMAT only, a colon-form stale value
  VERSION_FORMAT + STALE_VERSION, and a short hash VERSION_FORMAT + VERSION_NOT_IN_MODEL.
- No version stored is the app's normal state while a training is pending, running or
  failed (VERSION_LOST covers the failed/pending case); on a ``completed`` row it is a
  VERSION_FORMAT finding, because the app would generate with nothing.
- VERSION_NOT_IN_MODEL and STALE_VERSION need the model's versions, so they are skipped
  when the model id is missing or the model answers 404.
- STALE_VERSION needs the latest version to come from this user's succeeded training: a
  version of unknown origin is not something to repoint to blindly.
- VERSION_LOST needs proof that the old version still exists: its destination model's
  versions must be in the facts (the row's model, or ``models_by_id``) and hold it.
"""

from __future__ import annotations

from core.drift.codes import RepairAction
from core.drift.context import Context
from core.drift.facts import TrainingRecord, blank_to_none
from core.drift.findings import Finding, Fix, make_finding, short
from core.drift.words import namer_for_stored_text
from core.gateway.values import ModelVersion, is_version_hash


def _stored_shape(raw: str | None) -> str:
    """A short description of what is stored instead of a bare hash."""
    if raw is None or not raw.strip():
        return "nothing (the row is completed)"
    if ":" in raw:
        return "owner/name:hash"
    if raw != raw.strip():
        return "a hash with surrounding whitespace"
    if is_version_hash(raw.lower()):
        return "upper-case hex"
    return f"a {len(raw)}-character value"


def check_version_format(ctx: Context) -> Finding | None:
    raw = ctx.row.replicate_version_id
    if raw is not None and is_version_hash(raw):
        return None
    if ctx.stored_hash is None and ctx.row.training_status != "completed":
        return None
    member = ctx.comparison.is_version_of_model if ctx.comparison is not None else None
    hash_ok = ctx.stored_hash is not None and is_version_hash(ctx.stored_hash)
    if hash_ok and member is not False:
        fix = Fix(
            RepairAction.NORMALISE_VERSION,
            f"Store {ctx.names.version(ctx.stored_hash)}, the version the value already "
            "names, on its own, so the app sends exactly that version"
            + ("." if member else " (the model's versions could not be checked)."),
        )
    elif ctx.versions_known:
        fix = ctx.repoint_fix("What the row stores is no version of the user's model.")
    else:
        fix = Fix(
            None,
            "What the row stores is no usable version, and the user's model's versions "
            "could not be read; find the user's model first.",
        )
    return make_finding(
        "VERSION_FORMAT",
        evidence={
            "stored_version": raw,
            "normalised_version": ctx.stored_hash,
            "training_status": ctx.row.training_status,
            "model_id": ctx.model_id,
            "is_version_of_model": member,
            "latest_version": ctx.latest_version,
        },
        fix=fix,
        shape=_stored_shape(raw),
    )


def _identify(ctx: Context, version_id: str) -> tuple[str, str | None]:
    """What a foreign hash is, as far as the facts tell, and the training that says so."""
    for record in reversed(ctx.trainings):
        if record.trainer_version.strip().lower() == version_id:
            return f"the trainer's version ({record.trainer_model})", record.id
    producer = ctx.producer(version_id)
    if producer is not None:
        return f"a version of {producer.destination}", producer.id
    owner = ctx.facts.stored_owner
    if owner is not None and version_id == ctx.stored_hash and owner.user_id != ctx.row.user_id:
        whose = f"user {owner.user_id}'s" if owner.user_id else "another account's"
        return f"a version of {whose} model {owner.destination or '?'}", owner.training_id
    for model_id, other in ctx.facts.models_by_id.items():
        if other.has_version(version_id):
            return f"a version of {model_id}", None
    return f"unknown version {short(version_id)}…", None


def check_version_not_in_model(ctx: Context) -> Finding | None:
    if ctx.comparison is None or ctx.stored_hash is None or ctx.comparison.is_version_of_model:
        return None
    identified_as, via_training = _identify(ctx, ctx.stored_hash)
    latest_record = ctx.latest_producer
    owner = ctx.facts.stored_owner
    foreign_user = (
        owner.user_id
        if owner is not None and owner.user_id and owner.user_id != ctx.row.user_id
        else None
    )
    said = f"The app generates with {identified_as}."
    if foreign_user is not None:
        said += " This user's images are made with someone else's face."
    return make_finding(
        "VERSION_NOT_IN_MODEL",
        evidence={
            "stored_version": ctx.row.replicate_version_id,
            "normalised_version": ctx.stored_hash,
            "model_id": ctx.model_id,
            "identified_as": identified_as,
            "identified_by_training_id": via_training,
            "belongs_to_user_id": foreign_user,
            "belongs_to_model": owner.destination if foreign_user and owner else None,
            "latest_version": ctx.latest_version,
            "version_count": ctx.comparison.version_count,
            "latest_training_id": latest_record.id if latest_record else None,
        },
        fix=ctx.repoint_fix(said),
        identified_as=identified_as,
        model_id=ctx.model_id,
    )


def check_stale_version(ctx: Context) -> Finding | None:
    comparison = ctx.comparison
    if (
        comparison is None
        or ctx.row.training_status != "completed"
        or not comparison.is_version_of_model
        or comparison.is_latest
    ):
        return None
    latest_record = ctx.latest_producer
    if latest_record is None:
        return None
    stored_record = ctx.stored_producer
    latest = ctx.model.latest if ctx.model is not None else None
    return make_finding(
        "STALE_VERSION",
        evidence={
            "stored_version": ctx.row.replicate_version_id,
            "normalised_version": ctx.stored_hash,
            "stored_training_id": stored_record.id if stored_record else None,
            "latest_version": comparison.latest,
            "latest_created_at": latest.created_at if latest else None,
            "versions_behind": comparison.versions_behind,
            "version_count": comparison.version_count,
            "latest_training_id": latest_record.id,
            "latest_weights_url": latest_record.output_weights,
        },
        fix=ctx.repoint_fix("Replicate's site runs the latest version; the app does not."),
        versions_behind=comparison.versions_behind,
    )


def _ledger_evidence(ctx: Context) -> dict[str, object]:
    latest = ctx.last_succeeded
    return {
        "ledger_destinations": list(ctx.destinations),
        "latest_destination": ctx.latest_destination,
        "latest_succeeded_training_id": latest.id if latest else None,
        "training_count": len(ctx.trainings),
    }


def check_model_id_missing(ctx: Context) -> Finding | None:
    if ctx.model_id is not None:
        return None
    training_id = blank_to_none(ctx.row.training_id)
    if ctx.row.training_status == "completed":
        reason = "the row is completed"
    elif training_id is not None:
        reason = f"the row has training {training_id}"
    elif ctx.trainings:
        reason = f"the user has {len(ctx.trainings)} training(s)"
    else:
        return None
    destination = ctx.latest_destination
    if destination is not None:
        text = (
            f"The user's latest successful training went to {destination}: check that "
            "model on Replicate, then store it as the row's model."
        )
    else:
        text = (
            "No successful training says which model it went to: find the user's model on "
            "Replicate (the app names it user-{first 8 characters of the user id}-selfie-lora) "
            "and store it as the row's model."
        )
    return make_finding(
        "MODEL_ID_MISSING",
        evidence={
            "stored_model_id": ctx.row.replicate_model_id,
            "training_status": ctx.row.training_status,
            "training_id": training_id,
            **_ledger_evidence(ctx),
        },
        fix=Fix(None, text),
        reason=reason,
    )


def _exists(ctx: Context, model_id: str) -> bool:
    model = ctx.facts.model_facts(model_id)
    return model is not None and model.found


def check_model_not_found(ctx: Context) -> Finding | None:
    if ctx.model is None or ctx.model.found:
        return None
    alive = [
        model_id
        for model_id in ctx.destinations
        if model_id != ctx.model_id and _exists(ctx, model_id)
    ]
    if alive:
        text = (
            f"The user's trainings also went to {', '.join(alive)}, which still exists; "
            "decide whether the user should generate from it."
        )
    else:
        text = (
            f"{ctx.model_id} and its versions are gone: retrain into it (the app makes the "
            "model again when it is missing) with the previous photos at full quality."
        )
    return make_finding(
        "MODEL_NOT_FOUND",
        evidence={
            "model_id": ctx.model_id,
            "stored_version": ctx.row.replicate_version_id,
            **_ledger_evidence(ctx),
        },
        fix=Fix(None, text),
        model_id=ctx.model_id,
    )


def check_version_lost(ctx: Context) -> Finding | None:
    if ctx.stored_hash is not None or ctx.row.training_status not in ("failed", "pending"):
        return None
    good: TrainingRecord | None = None
    versions: tuple[ModelVersion, ...] = ()
    for record in reversed(ctx.succeeded):
        model = ctx.facts.model_facts(record.destination)
        if model is not None and model.has_version(record.version_hash):
            good, versions = record, model.versions
            break
    if good is None:
        return None
    done = good.completed_at
    finished = f" on {done.day} {done:%b %Y}" if done else ""
    return make_finding(
        "VERSION_LOST",
        evidence={
            "training_status": ctx.row.training_status,
            "stored_version": ctx.row.replicate_version_id,
            "failure_reason": ctx.row.failure_reason,
            "training_id": blank_to_none(ctx.row.training_id),
            "last_good_training_id": good.id,
            "last_good_version": good.version_hash,
            "last_good_destination": good.destination,
            "last_good_weights_url": good.output_weights,
            "last_good_trigger_word": good.trigger_word,
            "last_good_completed_at": good.completed_at,
        },
        fix=Fix(
            RepairAction.RESTORE_LAST_GOOD_VERSION,
            f"Point the app back at {namer_for_stored_text(versions).version(good.version_hash)},"
            f" made by the user's last successful training{finished}, with that training's "
            "weights file, so the user can generate again while the retrain is sorted out.",
        ),
        last_good_short=short(good.version_hash),
        last_good_training_id=good.id,
    )
