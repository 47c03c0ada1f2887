"""Checks of the row's other fields against the ledger: trigger word, status, weights.

Choices where the vocabulary leaves room:
- The trigger word and weights URL are compared stripped (the app's prompt and
  ``hf_lora`` survive stray spaces), otherwise exactly: a trigger word differing only in
  case is a different token to the text encoder.
- TRIGGER_WORD_MISMATCH compares with the training that produced the stored version, or,
  when no ledger training did (nothing stored, the trainer's hash…), with the latest
  succeeded training; a training whose input has no trigger word proves nothing.
- WEIGHTS_URL_MISMATCH only when the producing training is known and returned weights.
- STATUS_OUT_OF_SYNC compares ``training_status`` exactly as stored (the app's queries use
  ``= 'completed'``), and only when the ledger holds ``training_id`` with a known status;
  a ``training`` row whose training is still starting or processing is in sync.
"""

from __future__ import annotations

from core.drift.codes import ROW_STATUS_FOR_REPLICATE, RepairAction
from core.drift.context import Context
from core.drift.facts import blank_to_none
from core.drift.findings import Finding, Fix, make_finding

# The URL the app's admin "sync" routes build from a hash instead of using output.weights.
CONSTRUCTED_WEIGHTS_URL = "https://replicate.delivery/pbxt/{hash}/flux-lora.tar"


def check_trigger_word(ctx: Context) -> Finding | None:
    record = ctx.stored_producer
    reference = "produced the stored version"
    if record is None:
        record, reference = ctx.last_succeeded, "latest succeeded training"
    if record is None:
        return None
    trained = blank_to_none(record.trigger_word)
    stored = blank_to_none(ctx.row.trigger_word)
    if trained is None or stored == trained:
        return None
    return make_finding(
        "TRIGGER_WORD_MISMATCH",
        evidence={
            "stored_trigger_word": ctx.row.trigger_word,
            "trained_trigger_word": trained,
            "training_id": record.id,
            "training_is": reference,
            "version": record.version_hash,
        },
        fix=Fix(
            RepairAction.RESTORE_TRIGGER_WORD,
            f"Put back the trigger word “{trained}” that the user's training taught the "
            "model; prompts with any other word get no likeness.",
        ),
        stored_trigger_word=ctx.row.trigger_word,
        trained_trigger_word=trained,
    )


def check_status_sync(ctx: Context) -> Finding | None:
    training_id = blank_to_none(ctx.row.training_id)
    record = ctx.training(training_id)
    if record is None:
        return None
    expected = ROW_STATUS_FOR_REPLICATE.get(record.status)
    if expected is None or ctx.row.training_status == expected:
        return None
    if record.succeeded:
        text = (
            f"Mark the row completed, with the version the training made "
            f"({ctx.names.version(record.version_hash)}) and its weights file, as the app's "
            "progress check would have."
        )
    elif expected == "failed":
        text = "Mark the row failed with Replicate's error, as the app's progress check would."
    else:
        text = "Mark the row as training: Replicate is still running it."
    return make_finding(
        "STATUS_OUT_OF_SYNC",
        evidence={
            "training_id": record.id,
            "row_status": ctx.row.training_status,
            "replicate_status": record.status,
            "expected_row_status": expected,
            "row_updated_at": ctx.row.updated_at,
            "training_completed_at": record.completed_at,
            "training_error": record.error,
            "output_version": record.version_hash,
            "output_weights": record.output_weights,
        },
        fix=Fix(RepairAction.SYNC_STATUS, text),
        row_status=ctx.row.training_status,
        replicate_status=record.status,
        training_id=record.id,
    )


def check_weights_url(ctx: Context) -> Finding | None:
    record = ctx.stored_producer
    if record is None:
        return None
    expected = blank_to_none(record.output_weights)
    stored = blank_to_none(ctx.row.lora_weights_url)
    if expected is None or stored == expected:
        return None
    constructed = CONSTRUCTED_WEIGHTS_URL.format(hash=ctx.stored_hash)
    is_latest = ctx.stored_hash is not None and ctx.stored_hash == ctx.latest_version
    if is_latest:
        fix = ctx.repoint_fix("The app sends the row's weights file with every image.")
    else:
        fix = Fix(
            None,
            "Set the row's weights file to the one the training that made "
            f"{ctx.names.version(ctx.stored_hash)} produced; or point the app at the newest "
            "version, which replaces both.",
        )
    return make_finding(
        "WEIGHTS_URL_MISMATCH",
        evidence={
            "stored_weights_url": ctx.row.lora_weights_url,
            "training_weights_url": expected,
            "training_id": record.id,
            "version": ctx.stored_hash,
            "stored_is_latest": is_latest,
            "looks_constructed": stored == constructed,
        },
        fix=fix,
        training_id=record.id,
    )
