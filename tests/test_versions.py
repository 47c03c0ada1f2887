"""Reading stored version ids and comparing them with a model's versions: pure values."""

from __future__ import annotations

import pytest

from core.gateway.values import is_version_hash
from core.versions import Level, compare_versions, normalise_version, short_version

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
NEWEST_FIRST = (V3, V2, V1)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (V1, V1),
        (f"sandrasocial/user-x-selfie-lora:{V1}", V1),
        (f"  {V1}\n", V1),
        ("owner/name:", None),
        ("   ", None),
        (None, None),
        ("abc123", "abc123"),
        (V1.upper(), V1),  # one reading everywhere: lower-cased
        (f"owner/name:{'A' * 64}\t", "a" * 64),
    ],
)
def test_normalise_takes_the_text_after_the_last_colon(
    stored: str | None, expected: str | None
) -> None:
    assert normalise_version(stored) == expected


HEXED = "ab" * 32


@pytest.mark.parametrize(
    "stored",
    [f"{HEXED}\n", f" {HEXED}", f"{HEXED}\t", HEXED.upper(), f"owner/name:{HEXED}", HEXED[:12]],
)
def test_only_the_bare_lower_case_hash_is_well_formed(stored: str) -> None:
    assert not is_version_hash(stored)
    assert is_version_hash(HEXED)


def test_an_upper_case_latest_is_the_latest_and_a_version_of_the_model() -> None:
    comparison = compare_versions(HEXED.upper(), latest=HEXED, version_ids=(HEXED, V1))
    assert comparison.is_latest and comparison.is_version_of_model
    assert not comparison.stored_is_bare  # the drift engine's VERSION_FORMAT, not a lie
    assert comparison.normalised == HEXED


def test_short_version_shows_the_value_as_stored() -> None:
    assert short_version(f"sandrasocial/user:{V1}") == "sandrasocial"
    assert short_version(V1) == V1[:12]
    assert short_version("  not-a-version\n") == "  not-a-vers"
    assert short_version("ab\ncd") == "ab␣cd"
    assert short_version(None) == ""


def test_latest_bare_version_is_healthy() -> None:
    comparison = compare_versions(V3, latest=V3, version_ids=NEWEST_FIRST)
    assert comparison.stored_is_bare and comparison.is_latest
    assert comparison.is_version_of_model and comparison.versions_behind == 0
    assert [note.level for note in comparison.notes()] == [Level.OK]


def test_old_version_counts_how_far_behind() -> None:
    comparison = compare_versions(V1, latest=V3, version_ids=NEWEST_FIRST)
    assert comparison.is_latest is False and comparison.is_version_of_model is True
    assert comparison.versions_behind == 2 and comparison.version_count == 3
    assert "Stored ≠ latest — 2 versions behind." in [note.text for note in comparison.notes()]


def test_prefixed_value_is_flagged_even_when_it_is_the_latest() -> None:
    comparison = compare_versions(f"sandrasocial/m:{V3}", latest=V3, version_ids=NEWEST_FIRST)
    assert not comparison.stored_is_bare and comparison.normalised_is_hex64
    assert comparison.is_latest is True
    texts = [note.text for note in comparison.notes()]
    assert any("not a bare version id" in text for text in texts)


def test_hash_of_another_model_is_not_a_version_of_this_one() -> None:
    comparison = compare_versions("f" * 64, latest=V3, version_ids=NEWEST_FIRST)
    assert comparison.is_version_of_model is False and comparison.versions_behind is None
    assert "Not a version of this model." in [note.text for note in comparison.notes()]


def test_garbage_and_empty_values_never_raise() -> None:
    garbage = compare_versions("  not-a-version\n", latest=V3, version_ids=NEWEST_FIRST)
    assert not garbage.normalised_is_hex64 and garbage.is_version_of_model is False
    empty = compare_versions(None, latest=V3, version_ids=NEWEST_FIRST)
    assert empty.notes()[0].level is Level.ERROR and "No version stored" in empty.notes()[0].text


def test_unknown_versions_leave_the_answers_unknown() -> None:
    comparison = compare_versions(V1, latest=None, version_ids=None)
    assert comparison.is_latest is None and comparison.is_version_of_model is None
    assert comparison.notes()[-1].level is Level.INFO
    # The latest alone still proves a match.
    assert compare_versions(V3, latest=V3, version_ids=None).is_latest is True


def test_latest_defaults_to_the_newest_listed_version() -> None:
    comparison = compare_versions(V2, latest=None, version_ids=NEWEST_FIRST)
    assert comparison.latest == V3 and comparison.versions_behind == 1


def test_model_without_versions() -> None:
    comparison = compare_versions(V1, latest=None, version_ids=())
    assert comparison.is_latest is False and comparison.is_version_of_model is False


def test_versions_are_named_by_their_place_and_day_and_unknown_ones_by_their_hash() -> None:
    from datetime import UTC, datetime

    from core.gateway.values import ModelVersion
    from core.versions import version_name

    newer = ModelVersion("b" * 64, datetime(2026, 10, 3, tzinfo=UTC))
    older = ModelVersion("a" * 64, datetime(2025, 9, 1, tzinfo=UTC))
    versions = [newer, older]  # Replicate lists newest first
    assert version_name("b" * 64, versions, this_year=2026) == "v2 · trained 3 Oct"
    assert version_name(f"owner/name:{'A' * 64}", versions, this_year=2026) == (
        "v1 · trained 1 Sep 2025"
    )
    assert version_name("c" * 64, versions, this_year=2026) == "c" * 12
    assert version_name(None, versions) == "no version"
