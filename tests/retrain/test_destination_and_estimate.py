"""Where a retrain goes, said with its reason and the user's other models (and another
chosen by the admin), and how long a training usually takes, never "0 s" (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.drift.facts import TrainingRecord
from core.errors import DataRejected
from core.retrain.estimate import NOT_KNOWN, duration_words, usual_duration
from core.retrain.plan import retrain_target
from core.versions import version_name

pytestmark = pytest.mark.timeout(30)

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
MODEL = "sandrasocial/user-abc-selfie-lora"
FORK = "sandrasocial/user-abc-selfie-lora-2"


def _training(training_id: str, day: int, version: str, model: str, trigger: str) -> TrainingRecord:
    return TrainingRecord(
        id=training_id,
        trainer_model="replicate/fast-flux-trainer",
        trainer_version="f" * 64,
        status="succeeded",
        input={"trigger_word": trigger, "input_images": f"https://blob/{training_id}.zip"},
        output_version=f"{model}:{version}",
        created_at=datetime(2026, 10, day, tzinfo=UTC),
        completed_at=datetime(2026, 10, day, 1, tzinfo=UTC),
    )


HISTORY = (
    _training("t1", 1, V1, MODEL, "userabc"),
    _training("t2", 3, V2, MODEL, "userabc"),
    _training("t3", 5, V3, FORK, "userabc2"),  # the app forked the model, with a new word
)


def test_the_default_says_why_and_names_the_other_model() -> None:
    target = retrain_target(HISTORY, stored_version=V2, row_model=MODEL)
    assert target.destination == MODEL
    assert target.why == (
        "the model the app's row points at, and the one its current version was trained into"
    )
    assert target.other_destinations == (FORK,)
    assert version_name(target.current_version, target.versions, this_year=2026) == (
        "v2 · trained 3 Oct"
    )


def test_the_admin_may_choose_another_of_the_users_models_but_no_stranger() -> None:
    target = retrain_target(HISTORY, stored_version=V2, row_model=MODEL, into=FORK)
    assert (target.destination, target.trigger_word) == (FORK, "userabc2")
    assert target.previous_training_id == "t3"  # the gate compares with that model's photos
    assert target.why == "the model you chose" and target.other_destinations == (MODEL,)
    assert any("You chose" in note for note in target.notes)
    same = retrain_target(HISTORY, stored_version=V2, row_model=MODEL, into=MODEL)
    assert same.destination == MODEL and same.notes == ()
    with pytest.raises(DataRejected, match="not a model this user's trainings went into"):
        retrain_target(HISTORY, stored_version=V2, row_model=MODEL, into="someone/else")


def test_an_estimate_never_reads_0_s() -> None:
    assert usual_duration([]) == NOT_KNOWN and "not known yet" in NOT_KNOWN
    assert usual_duration([0.2, 0.4, 0.3]).startswith("usually under a minute in all")
    assert usual_duration([1300.0]).startswith("took about 22 min in all")
    assert duration_words(59.9) == "under a minute"
    assert duration_words(90) == "about 2 min"
    assert duration_words(2 * 3600 + 600) == "about 2 h 10 min"
    assert duration_words(3600) == "about 1 h"


def test_an_uploads_name_is_kept_without_control_characters() -> None:
    from core.retrain.submit import upload_label

    assert upload_label("self\x00ie\n.jpg") == "selfie.jpg"  # a NUL the database refuses
    assert upload_label("\x00\x01 ") == "photo"
    assert upload_label(None) == "photo"
    assert len(upload_label("x" * 500)) == 200
