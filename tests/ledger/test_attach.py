"""attach(): which user a training belongs to, rule by rule, with literal rows."""

from __future__ import annotations

from typing import Any

import pytest

from core.drift.facts import AppRow, TrainingRecord
from core.gateway.values import Training
from core.ledger.attach import ATTACH_RULES, attach, upload_path_user

HASH = "a" * 64
BLOB = "https://abc.public.blob.vercel-storage.com"


def training(
    training_id: str = "t1",
    *,
    version: str | None = None,
    trigger: str | None = None,
    images: str | None = None,
) -> Training:
    raw: dict[str, Any] = {
        "id": training_id,
        "model": "replicate/fast-flux-trainer",
        "version": "f" * 64,
        "status": "succeeded" if version else "failed",
        "input": {},
        "output": {"version": version} if version else None,
    }
    if trigger is not None:
        raw["input"]["trigger_word"] = trigger
    if images is not None:
        raw["input"]["input_images"] = images
    return Training.from_api(raw)


ANNA = AppRow(
    user_id="anna-1", training_id="t1", replicate_model_id="o/anna", trigger_word="useranna"
)
BEN = AppRow(user_id="ben-2", training_id="t2", replicate_model_id="o/ben", trigger_word="userben")
CARL = AppRow(user_id="carl-3", training_id=None, replicate_model_id=None, trigger_word="usercarl")
ROWS = (ANNA, BEN, CARL)


def test_rules_are_the_four_in_precedence_order() -> None:
    assert ATTACH_RULES == ("training_id", "output_model", "trigger_word", "upload_path")


def test_training_id_wins_over_every_other_rule() -> None:
    # Everything else points at Ben; the row's training_id says Anna.
    found = training(
        "t1",
        version=f"o/ben:{HASH}",
        trigger="userben",
        images=f"{BLOB}/training/ben-2/1-images.zip",
    )
    assert attach(found, ROWS) == ("anna-1", "training_id")


def test_output_model_when_no_row_names_the_training() -> None:
    # A retrain overwrote training_id: the old training is found by its destination.
    found = training("t0-old", version=f"o/ben:{HASH}", trigger="usercarl")
    assert attach(found, ROWS) == ("ben-2", "output_model")


def test_trigger_word_when_the_training_made_no_version() -> None:
    found = training("t9", trigger="usercarl", images=f"{BLOB}/training/anna-1/1-images.zip")
    assert attach(found, ROWS) == ("carl-3", "trigger_word")


def test_upload_path_as_the_last_resort() -> None:
    # The row's trigger word was overwritten with one this training never used.
    found = training("t9", trigger="old-word", images=f"{BLOB}/training/carl-3/17-images.zip")
    assert attach(found, ROWS) == ("carl-3", "upload_path")


def test_upload_path_user_is_url_decoded_and_needs_the_training_folder() -> None:
    assert upload_path_user(f"{BLOB}/training/5040000c%2D5ce6/1-images.zip") == "5040000c-5ce6"
    assert upload_path_user(f"{BLOB}/training/anna-1/1-images.zip?download=1") == "anna-1"
    assert upload_path_user(f"{BLOB}/trainings/anna-1/1-images.zip") is None
    assert upload_path_user(f"{BLOB}/retraining/anna-1/1-images.zip") is None
    assert upload_path_user(f"{BLOB}/training/anna-1/") is None
    assert upload_path_user(None) is None


@pytest.mark.parametrize(
    "near_miss",
    [
        training("t1x"),  # one character off
        training("t9", version=f"other/anna:{HASH}"),  # another owner's model
        training("t9", trigger="UserAnna"),  # case differs
        training("t9", trigger="useranna2"),  # a longer word
        training("t9", images=f"{BLOB}/training/anna/1-images.zip"),  # a prefix of the id
        training("t9", images=f"{BLOB}/training/dora-4/1-images.zip"),  # a user without a row
        training("t9", images=f"{BLOB}/uploads/anna-1/1-images.zip"),  # not the training folder
    ],
)
def test_near_misses_attach_to_nobody(near_miss: Training) -> None:
    assert attach(near_miss, ROWS) == (None, None)


def test_whitespace_junk_in_rows_still_matches() -> None:
    rows = [
        AppRow(
            user_id="dora-4",
            training_id=" t7\n",
            replicate_model_id=" o/dora ",
            trigger_word="userdora ",
        )
    ]
    assert attach(training("t7"), rows) == ("dora-4", "training_id")
    assert attach(training("t8", version=f"o/dora:{HASH}"), rows) == ("dora-4", "output_model")
    assert attach(training("t8", trigger=" userdora"), rows) == ("dora-4", "trigger_word")


def test_an_ambiguous_rule_falls_through_to_the_next() -> None:
    # Two rows name the same model (junk data): the trigger word decides instead.
    rows = [
        AppRow(user_id="eve-5", replicate_model_id="o/shared", trigger_word="usereve"),
        AppRow(user_id="fay-6", replicate_model_id="o/shared", trigger_word="userfay"),
    ]
    assert attach(training("t1", version=f"o/shared:{HASH}", trigger="userfay"), rows) == (
        "fay-6",
        "trigger_word",
    )
    assert attach(training("t1", version=f"o/shared:{HASH}"), rows) == (None, None)


def test_ledger_records_attach_like_gateway_trainings() -> None:
    record = TrainingRecord(
        id="t0-old",
        trainer_model="x",
        trainer_version="y",
        status="succeeded",
        output_version=f"o/ben:{HASH}",
    )
    assert attach(record, ROWS) == ("ben-2", "output_model")


def test_no_rows_attach_nothing() -> None:
    assert attach(training("t1", trigger="useranna"), []) == (None, None)
