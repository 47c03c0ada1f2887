"""The User page's live diagnosis: the row read now, the rest of the facts cached briefly.

The row (the app's database) is read on every run: it is the truth a repair changes. The
facts from Replicate and the ledger (``core.live_diagnosis.gather_live``: the model and
its versions, the trainings, other models, the user's trainings by id when the ledger has
a gap, the photo facts already measured) are cached for ``FACTS_TTL_SECONDS`` per user and
ledger listing (a fleet sync by the workers reads them again), so opening a
dialog or clicking a button does not call Replicate again. They are frozen values
holding read-only mappings, which do not pickle, hence ``st.cache_resource``: every
session gets the same immutable object. Failures are never cached.

Photos are never measured here (dlib takes seconds per training): the ZIPs the dataset
checks need and the cache lacks are queued for the workers (``photos_pending``), and the
page catches up when they are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import streamlit as st

from core.decisions import decisions_for
from core.drift.facts import AppRow, ModelFacts
from core.errors import DataRejected, NotFound, Problem, ReplicateError
from core.live_diagnosis import LiveDiagnosis, LiveFacts, diagnose_live, gather_live
from core.repairs import read_row
from core.repairs.values import app_row
from core.scan.zips import missing_zip_urls, queue_zip_reads
from dashboard.history import fresh_within, history_now
from dashboard.loaders import forget_replicate_parts
from dashboard.resources import read_only, runtime, writing

FACTS_TTL_SECONDS = 30


@st.cache_resource(
    ttl=FACTS_TTL_SECONDS, max_entries=64, show_spinner="Reading this user's models and trainings…"
)
def _live_facts(
    replicate_base_url: str,
    user_id: str,
    model_id: str | None,
    training_id: str | None,
    listed_at: str | None,  # the ledger's last listing: a new one reads the facts again
    _row: AppRow,
    _known: Mapping[str, ModelFacts],
) -> LiveFacts:
    rt = runtime()
    return gather_live(
        _row,
        app_engine=rt.engine,
        ops_engine=rt.ops_engine,
        gateway=rt.gateway,
        fresh_within=fresh_within(),
        list_here=False,  # a page never lists the fleet: the workers do, when asked
        known_models=_known,
    )


def model_row(user_id: str) -> dict[str, Any] | None:
    """The user's ``user_models`` row as a repair reads it (every column), or None."""
    with read_only(runtime().engine) as conn:
        try:
            return read_row(conn, user_id)
        except NotFound:
            return None


def user_diagnosis(
    user_id: str,
    *,
    row: Mapping[str, Any] | None = None,
    known_models: Mapping[str, ModelFacts] | None = None,
) -> LiveDiagnosis | None:
    """The user's findings now; None when they have no ``user_models`` row (never trained).

    ``row``: the row the caller read just now (else it is read here); ``known_models``:
    models the caller read from Replicate moments ago (the User page's own reads), not
    asked for again. Replicate failing gives the user's SCAN_ERROR with the message, not
    an exception.
    """
    row = dict(row) if row is not None else model_row(user_id)
    if row is None:
        return None
    current = app_row(row)
    try:
        live = _live_facts(
            runtime().replicate_base_url,
            current.user_id,
            current.model_id,
            current.training_id,
            history_now().listed_at,
            current,
            dict(known_models or {}),
        )
    except (ReplicateError, DataRejected) as exc:
        return diagnose_live(current, problem=Problem.of(exc))
    # Decisions are read now, not with the cached facts: one taken a moment ago shows.
    with read_only(runtime().ops_engine) as conn:
        decided = decisions_for(conn, [current.user_id]).get(current.user_id, ())
    return diagnose_live(current, replace(live, facts=replace(live.facts, decisions=decided)))


def photos_pending(user_id: str, stored_version: str | None) -> int:
    """How many of the ZIPs this user's checks need (``stored_version``: what their row
    stores) are still unmeasured; those are queued for the workers (once each, whoever
    asks first)."""
    with writing(runtime().ops_engine) as conn, conn.begin():
        missing = missing_zip_urls(conn, {user_id: stored_version})
        if missing:
            queue_zip_reads(conn, missing)
    return len(missing)


def forget_facts() -> None:
    """Drop the cached facts (after a repair, an undo or a scan)."""
    _live_facts.clear()
    forget_replicate_parts()
