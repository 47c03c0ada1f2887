"""Compare's reads and writes, for the pages.

Plans are cached briefly (they read Replicate: the model's latest version and each
version's input schema); requests, retries and cancels are never cached or retried here:
each is one action, checked again in core (role, budget, one run per confirmation) and
audited there. The comparison itself is read fresh on every run while it is live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import streamlit as st

from core.compare.bottom_line import Dataset
from core.compare.plan import CompareFacts, ComparePlan, plan_comparison, read_compare_facts
from core.compare.request import (
    Budget,
    budget_of,
    cancel_comparison,
    request_comparison,
    retry_image,
)
from core.compare.store import ComparisonView, HistoryRow, history, load_comparison, requesters
from core.errors import DashboardError
from core.gateway.values import ModelVersion
from core.roles import Actor
from dashboard.history import refresh_user
from dashboard.resources import read_only, runtime, writing

PLAN_TTL_SECONDS = 120


def facts(user_id: str) -> tuple[CompareFacts, str | None]:
    """The user's profile, stored version and versions (from their trainings, read again
    by id when the ledger lacks them); and a problem reading them, if any. The page never
    lists the fleet: a stale history is handed to the workers (``dashboard.history``)."""
    live = runtime()
    problem = refresh_user(user_id)
    with read_only(live.engine) as app, read_only(live.ops_engine) as ops:
        return read_compare_facts(app, ops, user_id), problem


@st.cache_data(ttl=PLAN_TTL_SECONDS, max_entries=64, show_spinner="Reading the versions…")
def plan(
    user_id: str,
    columns: tuple[str, ...],
    preset: str | None,
    prompt: str | None,
    seeds: tuple[int, ...],
    repeat: bool,
) -> ComparePlan:
    found, _ = facts(user_id)
    return plan_comparison(
        runtime().gateway,
        found,
        columns=columns,
        preset=preset,
        prompt=prompt,
        seeds=seeds,
        repeat=repeat,
    )


@st.cache_data(ttl=PLAN_TTL_SECONDS, max_entries=64, show_spinner=False)
def names_for(
    user_id: str, model_id: str | None
) -> tuple[str | None, tuple[ModelVersion, ...], dict[str, Dataset]]:
    """What a comparison's bottom line calls the user and the versions: the user's email
    (None when unknown) and the model's versions, to name them by
    (``core.versions.version_name``); from the user's trainings when Replicate cannot
    list them, none when neither can be read. With what each of the user's versions was
    trained on, by version id, as measured."""
    live = runtime()
    try:
        with read_only(live.engine) as app, read_only(live.ops_engine) as ops:
            found: CompareFacts | None = read_compare_facts(app, ops, user_id)
    except DashboardError:
        found = None
    email = found.email if found else None
    known = found.versions if found else ()
    datasets = {item.version_id: Dataset(item.photos, item.median_px) for item in known}
    model = model_id or (found.model_id if found else None)
    if model is not None:
        try:
            return email, tuple(live.gateway.list_versions(model)), datasets
        except DashboardError:
            pass  # named from the user's trainings instead
    return (
        email,
        tuple(ModelVersion(item.version_id, item.created_at) for item in known),
        datasets,
    )


def budget(actor: Actor) -> Budget:
    live = runtime()
    with read_only(live.ops_engine) as conn:
        return budget_of(conn, actor.email, daily_usd=live.settings.compare_daily_budget_usd)


def request(actor: Actor, planned: ComparePlan, token: str) -> int:
    """The comparison for this confirmation (the same id however often it is sent)."""
    live = runtime()
    with writing(live.ops_engine) as conn, conn.begin():
        return request_comparison(
            conn,
            actor,
            planned,
            confirm_token=token,
            price_per_image_usd=live.settings.compare_price_per_image_usd,
            daily_budget_usd=live.settings.compare_daily_budget_usd,
        )


def retry(actor: Actor, image_id: int) -> None:
    live = runtime()
    with writing(live.ops_engine) as conn, conn.begin():
        retry_image(
            conn,
            actor,
            image_id,
            price_per_image_usd=live.settings.compare_price_per_image_usd,
            daily_budget_usd=live.settings.compare_daily_budget_usd,
        )


def cancel(actor: Actor, comparison_id: int) -> None:
    with writing(runtime().ops_engine) as conn, conn.begin():
        cancel_comparison(conn, actor, comparison_id)


def comparison(comparison_id: int, *, previews: bool = True) -> ComparisonView:
    with read_only(runtime().ops_engine) as conn:
        return load_comparison(conn, comparison_id, previews=previews)


def past(
    *,
    user_id: str | None,
    requested_by: str | None,
    since: datetime | None,
    verdict_contains: str | None,
) -> list[HistoryRow]:
    with read_only(runtime().ops_engine) as conn:
        return history(
            conn,
            user_id=user_id,
            requested_by=requested_by,
            since=since,
            verdict_contains=verdict_contains,
        )


def who_compared() -> Sequence[str]:
    with read_only(runtime().ops_engine) as conn:
        return requesters(conn)
