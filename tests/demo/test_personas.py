"""The persona table: unique, realistic, and covering the findings vocabulary."""

from __future__ import annotations

import re

from core.app.calls import first_trigger_word
from core.demo import PERSONAS
from core.demo.personas import CAST

# product.md, "Findings vocabulary".
FINDING_CODES = (
    "VERSION_FORMAT",
    "VERSION_NOT_IN_MODEL",
    "STALE_VERSION",
    "TRIGGER_WORD_MISMATCH",
    "MODEL_ID_MISSING",
    "MODEL_NOT_FOUND",
    "VERSION_LOST",
    "STATUS_OUT_OF_SYNC",
    "WEIGHTS_URL_MISMATCH",
    "DUPLICATE_MODELS",
    "DATASET_SHRANK",
    "DATASET_DEGRADED",
    "TRAINER_CHANGED",
    "PARAMS_CHANGED",
    "RETRAIN_REGRESSED",
    "SCAN_ERROR",
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GENDERS = {"woman", "man", "non-binary", None}
ETHNICITIES = {
    "Black",
    "White",
    "Asian",
    "Latina",
    "Middle Eastern",
    "Indigenous",
    "Mixed",
    "Other",
    None,
}


def test_keys_ids_emails_and_trigger_words_are_unique() -> None:
    for values in (
        [p.key for p in PERSONAS],
        [p.user_id for p in PERSONAS],
        [p.email for p in PERSONAS],
        [first_trigger_word(p.user_id) for p in PERSONAS],
    ):
        assert len(set(values)) == len(values) >= 17


def test_ids_mix_uuids_and_legacy_strings_and_emails_are_examples() -> None:
    uuids = [p for p in PERSONAS if UUID.match(p.user_id)]
    legacy = [p for p in PERSONAS if p.user_id.isdigit()]
    assert len(uuids) + len(legacy) == len(PERSONAS)
    assert len(legacy) >= 4 and len(uuids) >= 8
    assert all(p.email.endswith("@example.com") for p in PERSONAS)


def test_expected_codes_come_from_the_vocabulary_in_its_order() -> None:
    for persona in PERSONAS:
        assert set(persona.expected_codes) <= set(FINDING_CODES)
        order = [FINDING_CODES.index(code) for code in persona.expected_codes]
        assert order == sorted(order), persona.key


def test_every_code_but_scan_error_is_expected_somewhere_and_healthy_have_none() -> None:
    expected = {code for persona in PERSONAS for code in persona.expected_codes}
    assert expected == set(FINDING_CODES) - {"SCAN_ERROR"}
    healthy = [p.key for p in PERSONAS if not p.expected_codes]
    assert {"healthy_single", "healthy_retrained"} <= set(healthy)


def test_profiles_use_the_app_ui_values() -> None:
    for member in CAST:
        assert member.profile.gender in GENDERS
        assert member.profile.ethnicity in ETHNICITIES
        assert member.profile.plan in {
            "sselfie-studio",
            "content-creator-studio",
            "one-time-session",
        }
    assert len({member.profile.look for member in CAST}) == len(CAST)
