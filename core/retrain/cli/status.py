"""``status``: the user's retrains, newest first, with the promotion gate's reading (reads
only: no actor needed)."""

from __future__ import annotations

from core.facts.record import read_user_record
from core.retrain.cli.common import Outcome, retrain_json, retrain_lines
from core.retrain.gate import gate_outcome
from core.retrain.views import retrains_of_user
from core.runtime import Runtime


def status_command(runtime: Runtime, user_id: str) -> Outcome:
    with runtime.engine.connect() as app:
        model_row = read_user_record(app, user_id).model_row or {}
    with runtime.ops_engine.connect() as conn:
        rows = retrains_of_user(conn, user_id)
    items = []
    for row in rows:
        item = retrain_json(row)
        if row.comparison_id is not None:
            status, reading = gate_outcome(runtime.ops_engine, row.id)
            item["gate"] = {
                "comparison_id": row.comparison_id,
                "status": status,
                "not_worse": reading.not_worse if reading else None,
                "sentence": reading.sentence if reading else None,
            }
        else:
            item["gate"] = None
        items.append(item)
    result = {
        "user_id": user_id,
        "current_version": model_row.get("replicate_version_id"),
        "retrains": items,
    }
    lines = [f"user {user_id}: current version {result['current_version'] or 'none'}"]
    for item in items:
        lines += retrain_lines(item)
    if not items:
        lines.append("no retrains yet")
    return Outcome(result, lines)
