"""One rule reads a column against column A, for the comparison's sentences and the
promotion gate alike; the stored stats are typed records that round-trip through JSON."""

from __future__ import annotations

import json

import pytest

from core.compare.scores import (
    ColumnStats,
    ComparisonStats,
    Reading,
    Tone,
    column_tones,
    read_column,
    verdict,
)
from core.retrain.gate import read_gate

pytestmark = pytest.mark.timeout(30)
FLOOR = 0.03


def column(letter: str, *, faces: int = 4, change: float | None = None) -> ColumnStats:
    return ColumnStats(
        letter=letter,
        images=4,
        faces=faces,
        identity_mean=0.4 if faces else None,
        identity_spread=0.01 if faces > 1 else None,
        sharpness_mean=120.0,
        identity_vs_a=change,
        sharpness_vs_a=None if change is None else -3.0,
    )


CASES = [
    (column("A", faces=0), column("B", faces=0), Reading.NO_FACE_EITHER, False),
    (column("A"), column("B", faces=0), Reading.LOSES_LIKENESS, False),
    (column("A", faces=0), column("B"), Reading.A_LOSES_LIKENESS, False),
    (column("A"), column("B", change=None), Reading.NOTHING_TO_COMPARE, False),
    (column("A"), column("B", change=0.02), Reading.SAME, True),
    (column("A"), column("B", change=-0.05), Reading.CLOSER, True),
    (column("A"), column("B", change=0.05), Reading.FURTHER, False),
]


@pytest.mark.parametrize(("base", "new", "reading", "not_worse"), CASES)
def test_the_gate_and_the_sentences_read_a_column_by_one_rule(
    base: ColumnStats, new: ColumnStats, reading: Reading, not_worse: bool
) -> None:
    assert read_column(base, new, FLOOR) is reading
    stored = json.loads(json.dumps(ComparisonStats(FLOOR, (base, new)).to_json()))
    gate = read_gate(stored)
    assert gate is not None and gate.not_worse is not_worse
    (sentence,) = verdict({"A": "A (stored)", "B": "B (new)"}, [base, new], FLOOR)
    if reading is Reading.LOSES_LIKENESS:
        assert "B (new) finds no face" in sentence and "loses the likeness" in sentence
    if reading is Reading.FURTHER:
        assert sentence.startswith("A (stored) is closer")
    if reading is Reading.CLOSER:
        assert sentence.startswith("B (new) is closer")


def test_stored_stats_round_trip_and_read_old_rows() -> None:
    stats = ComparisonStats(FLOOR, (column("A"), column("B", change=0.01)), column("R"))
    assert ComparisonStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats
    assert stats.column("B") == column("B", change=0.01) and stats.column("Z") is None
    # A row written before "repeat" was kept reads as no repeat.
    older = {"noise_floor": FLOOR, "columns": [column("A").to_json()]}
    assert ComparisonStats.from_json(older).repeat is None
    assert read_gate(older) is None  # one column: nothing for the gate to read


def test_each_verdict_line_is_coloured_by_what_it_means_for_its_column() -> None:
    stats = ComparisonStats(
        FLOOR,
        (
            column("A"),
            column("B", change=0.05),  # further from the user: worse
            column("C", change=-0.05),  # closer: better
            column("D", change=0.01),  # within noise
            column("E", faces=0),  # loses the likeness: worse
        ),
    )
    assert column_tones(stats, 4) == (Tone.WORSE, Tone.BETTER, Tone.NO_DIFFERENCE, Tone.WORSE)
    # A whose images show no face loses the likeness: a problem, as the gate reads it.
    no_face_a = ComparisonStats(FLOOR, (column("A", faces=0), column("B")))
    assert column_tones(no_face_a, 1) == (Tone.WORSE,)
    # Lines the stats do not account for ("A alone", nothing scored) stay neutral.
    assert column_tones(ComparisonStats(FLOOR, (column("A"),)), 1) == (Tone.NO_DIFFERENCE,)
    assert column_tones(None, 2) == (Tone.NO_DIFFERENCE, Tone.NO_DIFFERENCE)
