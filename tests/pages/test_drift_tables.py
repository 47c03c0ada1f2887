"""dashboard.drift_tables, dashboard.charts and dashboard.tables: how findings, history,
fleet figures, retrain outcomes, audit records and settings read on the pages, from values
built in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr

from core.audit import AuditRecord
from core.config import get_settings
from core.drift import RepairAction, diagnose
from core.ledger.reviews import Verdict
from core.repairs import RepairPlan
from core.scan.values import CodeCount, TrendPoint, WorstUser
from core.timeline import build_timeline, version_lines
from core.watch.views import OUTCOME_ORDER, DayOutcomes, outcomes_per_day
from dashboard import audit_view, charts, drift_tables, tables
from tests.drift.builders import healthy, training

WHEN = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
LIVE = {
    "database_url": SecretStr("postgresql://app:pw@db.example/app"),
    "replicate_api_token": SecretStr("r8_driftTablesTest4f1e"),
}


def test_users_table_gets_worst_and_codes_after_the_user() -> None:
    frame = pd.DataFrame({"user": ["a", "b", "c"], "email": ["x", "y", "z"]})
    shown = drift_tables.with_findings(
        frame,
        {"a": "critical", "b": None},
        {"a": ("STALE_VERSION", "PARAMS_CHANGED")},
        checked={"a", "b"},
    )
    assert list(shown.columns) == ["user", "worst", "findings", "email"]
    # c was checked by no scan: "not scanned yet", never "no finding".
    assert list(shown["worst"]) == ["critical", "no finding", "not scanned yet"]
    assert list(shown["findings"]) == [["STALE_VERSION", "PARAMS_CHANGED"], [], []]
    never = drift_tables.with_findings(frame, {}, {}, checked=set())
    assert set(never["worst"]) == {"not scanned yet"} and list(frame.columns) == ["user", "email"]


def test_evidence_is_one_line_per_value_with_json_for_nested_values() -> None:
    records = (training(1), training(2, photos=9))
    (finding,) = [item for item in diagnose(healthy(*records)) if item.code == "PARAMS_CHANGED"]
    frame = drift_tables.evidence_frame(finding).set_index("evidence")["value"]
    assert frame["training_id"] == records[1].id
    assert frame["diff"].startswith('{"lora_rank": [48, 32]')


def test_timeline_and_version_frames_keep_unknowns_visible() -> None:
    records = (training(1), training(2, status="failed"), training(3, photos=9))
    facts = healthy(*records)
    assert facts.model is not None
    timeline = drift_tables.timeline_frame(build_timeline(facts.trainings, facts.model.versions))
    assert list(timeline["status"]) == ["succeeded", "failed", "succeeded"]
    assert list(timeline["version"])[1] == "—"
    assert timeline["photos"].tolist() == [16, 16, 9]
    assert timeline["parameters vs previous"][0] == "first succeeded training"
    assert "steps 1400 → 1200" in timeline["parameters vs previous"][2]
    assert timeline["note"][1] == "CUDA out of memory"
    versions = drift_tables.version_lines_frame(
        version_lines(
            facts.model.versions,
            facts.trainings,
            stored=facts.row.replicate_version_id,
            latest=facts.model.versions[0].id,
        )
    )
    assert list(versions["stored"]) == [True, False] and list(versions["latest"]) == [True, False]
    assert list(versions["trigger word used"]) == ["user5040000c"] * 2


def test_plan_and_change_frames_show_null_as_null() -> None:
    plan = RepairPlan(
        user_id="u1",
        action=RepairAction.SYNC_STATUS,
        before={"training_status": "training", "failure_reason": None, "completed_at": None},
        after={
            "training_status": "failed",
            "failure_reason": "boom",
            "completed_at": datetime(2026, 1, 2, 3, 4, 5),
        },
        explanation="",
        evidence={},
    )
    frame = drift_tables.plan_frame(plan).set_index("column")
    assert frame.loc["failure_reason"].to_dict() == {"before": "NULL", "after": "boom"}
    assert frame.loc["completed_at", "after"] == "2026-01-02 03:04:05"
    record = AuditRecord(
        id=3,
        at=WHEN,
        actor_email="a@x.test",
        actor_role="admin",
        action="repair:sync_status",
        target_user_id="u1",
        before={"failure_reason": None},
        after={"failure_reason": "boom"},
        reason="ticket",
        details={"evidence": {"n": 1}},
    )
    change = audit_view.change_frame(record).set_index("column")
    assert change.loc["failure_reason"].to_dict() == {"before": "NULL", "after": "boom"}
    table = audit_view.audit_frame([record], {"u1": "ann@example.test"})
    assert table["user email"][0] == "ann@example.test"
    assert table["open"][0] == "user?user=u1"


def test_fleet_frames_and_charts() -> None:
    counts = [CodeCount("STALE_VERSION", "critical", 3), CodeCount("PARAMS_CHANGED", "info", 5)]
    frame = drift_tables.counts_frame(counts)
    assert list(frame["users"]) == [3, 5] and frame["what it means"][0].startswith(
        "The app generates with an older version"
    )
    bar = charts.counts_bar(counts)
    assert {trace.name for trace in bar.data} == {"critical", "info"}
    trend = charts.trend_lines(
        [
            TrendPoint(1, WHEN, "STALE_VERSION", "critical", 3),
            TrendPoint(2, WHEN.replace(day=3), "STALE_VERSION", "critical", 1),
            TrendPoint(1, WHEN, "DATASET_SHRANK", "warning", 2),
            TrendPoint(2, WHEN.replace(day=3), "DATASET_SHRANK", "warning", 0),
        ]
    )
    lines = {(trace.name, tuple(trace.hovertext)): list(trace.y) for trace in trend.data}
    assert lines == {
        ("critical", ("STALE_VERSION", "STALE_VERSION")): [3, 1],
        ("warning", ("DATASET_SHRANK", "DATASET_SHRANK")): [2, 0],
    }
    worst = drift_tables.worst_users_frame(
        [
            WorstUser("u1", "critical", ("STALE_VERSION",), 2),
            WorstUser("gone", "info", ("PARAMS_CHANGED",), 1),
        ],
        {"u1": "ann@example.test"},
    )
    assert worst.to_dict("records")[1]["email"] == "—"  # a user the app no longer has
    assert worst.to_dict("records")[:1] == [
        {
            "email": "ann@example.test",
            "user": "u1",
            "worst": "critical",
            "findings": ["STALE_VERSION"],
            "count": 2,
            "open": "user?user=u1",
        }
    ]


def test_the_outcomes_chart_stacks_every_day_in_one_order_and_fixed_colours() -> None:
    days = outcomes_per_day([], days=3, now=WHEN)
    days[1] = DayOutcomes(days[1].day, better=2, worse=1, broken=1, reviewing=4)
    bars = charts.outcomes_bars(days)
    assert [trace.name for trace in bars.data] == ["Better", "No difference", "Worse", "Broken"]
    assert [trace.marker.color for trace in bars.data] == [
        charts.VERDICT_PALETTE[verdict] for verdict in OUTCOME_ORDER
    ]
    assert bars.layout.barmode == "stack" and bars.layout.legend.traceorder == "normal"
    assert {
        name: list(trace.y)
        for name, trace in zip(["better", "same", "worse", "broken"], bars.data, strict=True)
    } == {"better": [0, 2, 0], "same": [0, 0, 0], "worse": [0, 1, 0], "broken": [0, 1, 0]}
    # Worse and broken are reds, better green: what they mean, not plotly's cycle.
    assert charts.VERDICT_PALETTE[Verdict.BETTER] == "#2e7d32"
    assert {charts.VERDICT_PALETTE[Verdict.WORSE], charts.VERDICT_PALETTE[Verdict.BROKEN]} == {
        "#e53935",
        "#8e0000",
    }


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        ({}, "20 s (DEMO's default)"),
        (LIVE, "300 s (LIVE's default)"),
        ({"watch_interval_seconds": 0}, "0 (off)"),
        ({**LIVE, "watch_interval_seconds": 0}, "0 (off)"),
        ({"watch_interval_seconds": 60}, "60 s"),
        ({**LIVE, "watch_interval_seconds": 45.5}, "45.5 s"),
    ],
)
def test_settings_show_the_watch_interval_it_runs_with(
    settings: dict[str, Any], shown: str
) -> None:
    frame = tables.settings_frame(get_settings(**settings)).set_index("setting")
    assert frame.loc["WATCH_INTERVAL_SECONDS", "value"] == shown
    assert frame.loc["WATCH_INTERVAL_SECONDS", "default"] == "300 s in LIVE, 20 s in DEMO"
