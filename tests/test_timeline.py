"""core.timeline: the User page's timeline, per-version table and "how far behind", from
facts built in memory (the drift builders' users)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core.gateway.values import ModelVersion
from core.redaction import REDACTED
from core.timeline import (
    ParamChange,
    build_timeline,
    how_far_behind,
    parameter_changes,
    trainer_label,
    version_lines,
)
from tests.drift.builders import (
    MODEL_ID,
    OSTRIS_TRAINER,
    OSTRIS_TRAINER_VERSION,
    T0,
    dataset,
    model_of,
    training,
    version_hash,
)


def test_parameter_changes_name_each_input_and_hide_secrets() -> None:
    before = {"steps": 1400, "lora_rank": 48, "hf_token": "hf_secret", "autocaption": True}
    after = {"steps": 1200, "lora_rank": 48, "hf_token": "hf_other", "resolution": "512"}
    changes = parameter_changes(before, after)
    assert changes == (
        ParamChange("autocaption", True, None),
        ParamChange("hf_token", REDACTED, REDACTED),
        ParamChange("resolution", None, "512"),
        ParamChange("steps", 1400, 1200),
    )
    assert str(changes[-1]) == "steps 1400 → 1200" and str(changes[0]) == "autocaption True → —"
    assert parameter_changes({"a": None}, {}) == ()  # not sent = sent as null


def test_timeline_lists_trainings_oldest_first_with_photos_and_diffs() -> None:
    first = training(1, photos=16)
    failed = training(2, photos=8, status="failed")
    third = training(
        3,
        photos=8,
        data=dataset(8, short_side=600, jpeg_quality=55, failing=3),
        trainer=OSTRIS_TRAINER,
        trainer_version=OSTRIS_TRAINER_VERSION,
    )
    entries = build_timeline([first, failed, third], model_of([first, failed, third]).versions)
    assert [entry.training_id for entry in entries] == [first.id, failed.id, third.id]
    one, two, three = entries
    assert one.compared_with is None and one.changes == () and not one.trainer_changed
    assert (
        one.status,
        one.version_id,
        one.photos,
        one.median_px,
        one.jpeg_quality,
        one.failing_photos,
        one.trigger_word,
    ) == ("succeeded", first.version_hash, 16, 1024, 88, 0, "user5040000c")
    assert one.trainer == f"replicate/fast-flux-trainer:{first.trainer_version[:8]}"
    # Both later trainings compare with the last SUCCEEDED one before them: the first.
    assert two.compared_with == three.compared_with == first.id
    assert two.status == "failed" and two.version_id is None and two.error
    assert {change.name for change in three.changes} == {
        "lora_rank",
        "network_alpha",
        "num_repeats",
        "steps",
    }
    assert "steps 1400 → 1200" in three.changes_text
    assert three.trainer_changed and (
        three.photos,
        three.median_px,
        three.jpeg_quality,
        three.failing_photos,
    ) == (8, 600, 55, 3)
    assert three.created_at is not None
    assert three.completed_at == three.created_at + timedelta(minutes=20)


def test_versions_no_training_made_get_their_own_line_and_unknowns_stay_empty() -> None:
    first = training(1, data=dataset(12))
    unknown = version_hash("made-elsewhere")
    model = model_of([first], extra_newer=[unknown])
    unmeasured = replace(training(2), dataset=None)
    entries = build_timeline([first, unmeasured], model.versions)
    assert [(entry.training_id, entry.version_id) for entry in entries] == [
        (first.id, first.version_hash),
        (unmeasured.id, unmeasured.version_hash),
        (None, unknown),
    ]
    orphan = entries[-1]
    assert not orphan.is_training and orphan.status is None and orphan.photos is None
    assert "no training in the ledger" in (orphan.dataset_note or "")
    assert entries[1].photos is None and entries[1].dataset_note == "photos not measured yet"
    assert build_timeline([], []) == ()


def test_version_table_marks_stored_and_latest_with_the_training_behind_each() -> None:
    records = [training(n, photos=p) for n, p in ((1, 16), (2, 14), (3, 9))]
    model = model_of(records, extra_newer=[version_hash("unknown")])
    stored = f"{MODEL_ID}:{records[0].version_hash}"  # colon form: still recognised
    lines = version_lines(model.versions, records, stored=stored, latest=model.versions[0].id)
    assert [line.number for line in lines] == [4, 3, 2, 1]
    assert [line.training_id for line in lines] == [
        None,
        records[2].id,
        records[1].id,
        records[0].id,
    ]
    assert [(line.is_stored, line.is_latest) for line in lines] == [
        (False, True),
        (False, False),
        (False, False),
        (True, False),
    ]
    assert (lines[1].photos, lines[1].median_px, lines[1].trigger_word) == (9, 1024, "user5040000c")
    assert lines[0].trainer is None and lines[0].photos is None
    assert lines[1].trainer == trainer_label(records[2])
    assert version_lines((), records, stored=None, latest=None) == ()


def test_how_far_behind_in_plain_words() -> None:
    records = [training(n) for n in (1, 2, 3)]
    versions = model_of(records).versions
    first, last = records[0].version_hash or "", records[-1].version_hash or ""
    text = how_far_behind(first, versions)
    assert text is not None
    assert text.startswith("The app generates with v1 · trained ")
    assert f"({first[:12]}…), 2 versions behind the latest v3 · trained " in text
    assert f"({last[:12]}…, 2 days after the stored one)" in text
    one_behind = how_far_behind(records[1].version_hash, versions)
    assert one_behind is not None and "1 version behind" in one_behind
    assert "is the latest" in (how_far_behind(f" {last.upper()} ", versions) or "")
    assert "not one of the model's 3 versions" in (how_far_behind("ab" * 32, versions) or "")
    assert "Nothing usable is stored" in (how_far_behind("  ", versions) or "")
    assert how_far_behind(first, ()) is None
    undated = (ModelVersion(id=last, created_at=None), ModelVersion(id=first, created_at=T0))
    assert "created on an unknown date)" in (how_far_behind(first, undated) or "")
