"""Findings in staff's words (``core.drift.words``): a sentence from each finding's
evidence, without its snake_case keys or ids, versions named as pages name them."""

from __future__ import annotations

import re

from core.drift import CODES, diagnose, scan_error
from core.drift.findings import Finding, Fix, make_finding
from core.drift.words import SENTENCES, Namer, evidence_ids, evidence_sentence
from core.gateway.values import ModelVersion
from tests.drift.builders import healthy, training
from tests.drift.scenarios import scenarios

FIRST, SECOND = training(1), training(2)


def _keys_in(text: str, finding: Finding) -> list[str]:
    return [key for key in finding.evidence if "_" in key and re.search(rf"\b{key}\b", text)]


def test_every_code_has_a_sentence() -> None:
    assert set(SENTENCES) == {spec.code for spec in CODES}


def test_every_scenario_finding_reads_as_words_without_keys_or_full_ids() -> None:
    seen = set()
    for scenario in scenarios():
        model = scenario.facts.model
        names = Namer(model.versions if model is not None else (), this_year=2025)
        for finding in diagnose(scenario.facts):
            seen.add(finding.code)
            for text in (evidence_sentence(finding, names), finding.fix.text):
                assert text and not _keys_in(text, finding), (scenario.name, text)
                full_ids = [
                    value
                    for _, value in evidence_ids(finding)
                    if len(value) == 64 or value.startswith("tr0")
                ]
                assert not [value for value in full_ids if value in text], (scenario.name, text)
    assert len(seen) >= 13


def test_a_stale_version_is_said_with_version_names() -> None:
    facts = healthy(FIRST, SECOND, replicate_version_id=FIRST.version_hash)
    (stale,) = [finding for finding in diagnose(facts) if finding.code == "STALE_VERSION"]
    assert facts.model is not None
    names = Namer(facts.model.versions, this_year=2025)
    assert evidence_sentence(stale, names) == (
        "The row stores v1 · trained 2 Jun; the model's latest is v2 · trained 3 Jun "
        "(1 version behind)."
    )
    # The fix is stored, so it always says the year.
    assert "Point the app at v2 · trained 3 Jun 2025, the model's newest version" in (
        stale.fix.text
    )
    assert ("training that made the latest version", SECOND.id) in evidence_ids(stale)


def test_a_version_not_among_the_models_is_its_short_hash() -> None:
    names = Namer((ModelVersion("a" * 64, None),))
    assert names.version("b" * 64) == f"version {'b' * 12}…"
    assert names.version("  ") == "no version"
    assert names.version("owner/name:" + "a" * 64) == "v1"


def test_evidence_from_an_older_scan_says_less_but_never_raises() -> None:
    for spec in CODES:
        bare = make_finding(
            spec.code,
            evidence={},
            fix=Fix(None, "x"),
            **{name: "?" for name in re.findall(r"{(\w+)", spec.title)},
        )
        assert evidence_sentence(bare)
    assert evidence_sentence(scan_error("u1", "boom")) == "This user could not be checked: boom"


def test_unknown_code_falls_back() -> None:
    finding = Finding("NEW_CODE", CODES[0].severity, "t", {}, Fix(None, "x"))
    assert "evidence below" in evidence_sentence(finding)


def test_every_code_says_what_it_means_in_a_few_words() -> None:
    from core.drift.codes import CODES

    for spec in CODES:
        assert 0 < len(spec.plain) <= 70, spec.code
        assert "_" not in spec.plain, spec.code  # words, not column names
