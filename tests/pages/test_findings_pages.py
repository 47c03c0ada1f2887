"""Findings on the Users, User and Fleet pages, read-only, after real fleet scans.

The module's world (``tests.user_world``, trained on the sandbox) is scanned twice with
``run_scan`` from the command line's side (as an admin), so the pages read stored scans with
a trend of two points; nothing here writes, so every test sees the same scans.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe, Expander

from core.db import make_engine
from core.imaging.faces import FaceReader
from core.roles import Actor, Role
from core.sandbox.server import RunningSandbox
from core.scan.run import run_scan
from core.scan.values import ScanResult
from tests.pages.conftest import frames_with, new_app, open_page, texts, unescaped
from tests.user_world import UserWorld, gateway_on


@pytest.fixture(scope="module")
def scans(
    world: UserWorld,
    pages_database_url: str,
    sandbox_server: RunningSandbox,
    face_reader: FaceReader,
) -> Iterator[tuple[ScanResult, ...]]:
    """Two finished scans of everyone, as ``python -m core.scan`` would store them."""
    engine = make_engine(pages_database_url)
    try:
        with gateway_on(sandbox_server.base_url) as gateway:
            yield tuple(
                run_scan(
                    app_engine=engine,
                    ops_engine=engine,
                    gateway=gateway,
                    actor=Actor("ada@example.test", Role.ADMIN),
                    face_reader=face_reader,
                )
                for _ in range(2)
            )
    finally:
        engine.dispose()


def _codes(scans: tuple[ScanResult, ...]) -> dict[str, set[str]]:
    return {user.user_id: {finding.code for finding in user.findings} for user in scans[-1].users}


def _users(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    return list(at.dataframe[0].value["user"])


def test_the_scans_found_what_the_world_holds(
    scans: tuple[ScanResult, ...], world: UserWorld
) -> None:
    found = _codes(scans)
    assert found[world.stale] == {"STALE_VERSION", "WEIGHTS_URL_MISMATCH"}
    assert found[world.healthy] == set()
    assert found[world.prefixed] == {"VERSION_FORMAT"}
    assert found[world.missing_model] == {"MODEL_NOT_FOUND"}


def test_users_show_worst_severity_and_codes_and_filter_by_them(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    scans: tuple[ScanResult, ...],
) -> None:
    at = app_as("support")
    rows = at.dataframe[0].value.set_index("user")
    assert rows.loc[world.stale, "worst"] == "critical"
    assert list(rows.loc[world.stale, "findings"]) == ["STALE_VERSION", "WEIGHTS_URL_MISMATCH"]
    assert rows.loc[world.healthy, "worst"] == "no finding"
    assert list(rows.loc[world.healthy, "findings"]) == []
    assert f"the last fleet scan, #{scans[-1].scan_id}" in texts(at)

    at.multiselect(key="code").select("STALE_VERSION").run()
    assert _users(at) == [world.stale]
    assert "rows 1–1 of 1" in texts(at)
    at.multiselect(key="code").select("MODEL_NOT_FOUND").run()  # ANY of the codes
    assert set(_users(at)) == {world.stale, world.missing_model}

    at.multiselect(key="code").set_value([]).run()
    at.multiselect(key="severity").select("critical").run()
    critical = {
        user.user_id
        for user in scans[-1].users
        if any(finding.severity.value == "critical" for finding in user.findings)
    }
    assert set(_users(at)) == critical and world.healthy not in critical
    # Both filters: a critical VERSION_FORMAT user; with a text search on top.
    at.multiselect(key="code").select("VERSION_FORMAT").run()
    assert set(_users(at)) == {world.prefixed, world.malformed}
    at.text_input(key="q").input("9f1e2d3c").run()
    assert _users(at) == [world.prefixed]
    at.multiselect(key="severity").set_value(["info"]).run()
    assert at.dataframe[0].value.empty
    assert "No user matches this search and these findings." in texts(at)


def test_finding_filter_comes_from_the_url(
    live_env: None, world: UserWorld, scans: tuple[ScanResult, ...]
) -> None:
    at = new_app(email="product@staff.test", query={"code": "MODEL_NOT_FOUND"}).run()
    assert _users(at) == [world.missing_model]
    assert at.multiselect(key="code").value == ["MODEL_NOT_FOUND"]


@pytest.mark.parametrize("role", ["support", "product"])
def test_stale_user_page_shows_the_finding_how_far_behind_and_the_fix_but_no_repair(
    role: str,
    app_as: Callable[..., AppTest],
    world: UserWorld,
    scans: tuple[ScanResult, ...],
) -> None:
    at = open_page(app_as(role), "user", user=world.stale)
    assert not at.exception, at.exception
    shown = texts(at)
    versions = world.replicate.stale_versions
    trainings = world.replicate.stale_trainings
    assert "**Generating with a version 2 behind the latest** · `STALE_VERSION`" in shown
    assert re.search(
        f"The app generates with v1 · {NAMED} \\({versions[-1][:12]}…\\), 2 versions behind "
        f"the latest v3 · {NAMED} \\({versions[0][:12]}…",
        shown,
    ), shown
    # The evidence in a sentence, versions named as staff call them.
    assert re.search(
        f"The row stores v1 · {NAMED}; the model's latest is v3 · {NAMED} "
        r"\(2 versions behind\)\.",
        shown,
    ), shown
    # The fix in words; the ids beside it, not in it.
    (fix,) = [
        line
        for line in shown.splitlines()
        if line.startswith("**Fix:**") and "Replicate's site runs" in line
    ]
    assert re.fullmatch(
        r"\*\*Fix:\*\* Replicate's site runs the latest version; the app does not\. Point "
        f"the app at v3 · {NAMED}, the model's newest version, with the weights file of the "
        r"user's training that made it\.",
        fix,
    ), fix
    assert trainings[-1].id not in fix and versions[0][:12] not in fix
    assert f"training that made the latest version: {trainings[-1].id}" in shown
    assert "Repairs are done by an admin" in shown
    assert not [button for button in at.button if (button.key or "").startswith("repair_")]
    # The raw evidence is kept, folded, for engineers.
    assert "Raw evidence (for engineers)" in [expander.label for expander in at.expander]
    evidence = frames_with(at, "evidence")[0].set_index("evidence")["value"]
    assert evidence["versions_behind"] == "2" and evidence["latest_version"] == versions[0]


# "v2 · trained 3 Oct" (the year only when it is not this one's): core.versions.version_name
NAMED = r"trained \d{1,2} [A-Z][a-z]{2}(?: \d{4})?"


def _shown_in_order(node: Any, out: list[str]) -> None:
    """What a reader sees of ``node``, in page order: Markdown as read, tables' headers and
    cells; an expander for engineers (the raw evidence) is folded, so skipped."""
    if isinstance(node, Expander) and "for engineers" in node.label:
        return
    if isinstance(node, Dataframe):
        frame = node.value
        out.extend(str(column) for column in frame.columns)
        out.extend(str(cell) for cell in frame.to_numpy().ravel())
        return
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for key in sorted(children):
            _shown_in_order(children[key], out)
        return
    for attribute in ("label", "value"):
        value = getattr(node, attribute, None)
        if isinstance(value, str):
            out.append(unescaped(value))


def _findings_section(at: AppTest) -> str:
    """The User page's Findings part as read: from its heading to the Timeline's."""
    shown: list[str] = []
    _shown_in_order(at.main, shown)
    start, end = shown.index("Findings"), shown.index("Timeline")
    return "\n".join(shown[start:end])


@pytest.mark.parametrize("kind", ["stale", "prefixed", "foreign", "missing_model"])
def test_findings_are_read_in_sentences_not_evidence_keys(
    kind: str,
    app_as: Callable[..., AppTest],
    world: UserWorld,
    scans: tuple[ScanResult, ...],
) -> None:
    user_id = getattr(world, kind)
    at = open_page(app_as("support"), "user", user=user_id)
    assert not at.exception, at.exception
    (last,) = [user for user in scans[-1].users if user.user_id == user_id]
    keys = {key for finding in last.findings for key in finding.evidence if "_" in key}
    assert keys, kind  # each of these users has findings with such evidence
    section = _findings_section(at)
    shown = sorted(key for key in keys if re.search(rf"\b{key}\b", section))
    assert not shown, (shown, section)


def test_timeline_and_versions_of_the_stale_user(
    app_as: Callable[..., AppTest], world: UserWorld, scans: tuple[ScanResult, ...]
) -> None:
    at = open_page(app_as("support"), "user", user=world.stale)
    trainings = world.replicate.stale_trainings
    (timeline,) = frames_with(at, "parameters vs previous")
    assert list(timeline["training"]) == [training.id for training in trainings]
    assert list(timeline["status"]) == ["succeeded"] * 3
    assert list(timeline["trigger word"]) == ["user51a1e000"] * 3
    assert list(timeline["photos"]) == [10] * 3  # measured from the training ZIP
    assert timeline["median px"].notna().all() and timeline["JPEG quality"].notna().all()
    assert list(timeline["parameters vs previous"]) == [
        "first succeeded training",
        f"same as {trainings[0].id}",
        f"same as {trainings[1].id}",
    ]
    (versions,) = frames_with(at, "trigger word used")
    assert list(versions["version id"]) == list(world.replicate.stale_versions)
    assert list(versions["training"]) == [training.id for training in reversed(trainings)]
    assert list(versions["stored"]) == [False, False, True]
    assert list(versions["latest"]) == [True, False, False]
    assert [name.split(" · ")[0] for name in versions["version"]] == ["v3", "v2", "v1"]
    assert all(re.fullmatch(f"v\\d · {NAMED}", name) for name in versions["version"])


def test_healthy_user_has_no_findings(
    app_as: Callable[..., AppTest], world: UserWorld, scans: tuple[ScanResult, ...]
) -> None:
    at = open_page(app_as("admin"), "user", user=world.healthy)
    assert not at.exception, at.exception
    assert "No findings: the row, the model and the trainings agree." in texts(at)
    assert not [button for button in at.button if (button.key or "").startswith("repair_")]


@pytest.mark.parametrize("role", ["support", "product"])
def test_only_admins_reach_the_audit_log(role: str, app_as: Callable[..., AppTest]) -> None:
    at = app_as(role)
    with pytest.raises(ValueError):
        at.switch_page("../pages/audit.py")
    open_page(app_as("admin"), "audit")


def test_fleet_page_shows_counts_trend_and_worst_users(
    app_as: Callable[..., AppTest],
    world: UserWorld,
    scans: tuple[ScanResult, ...],
) -> None:
    at = open_page(app_as("support"), "fleet")
    assert not at.exception, at.exception
    metrics = {metric.label: str(metric.value) for metric in at.metric}
    assert metrics["last fleet scan"] == f"#{scans[-1].scan_id}" and metrics["status"] == "finished"
    assert metrics["users checked"] == f"{len(scans[-1].users)} of {len(scans[-1].users)}"
    (counts,) = frames_with(at, "what it means")
    expected: dict[str, int] = {}
    for codes in _codes(scans).values():
        for code in codes:
            expected[code] = expected.get(code, 0) + 1
    assert dict(zip(counts["code"], counts["users"], strict=True)) == expected
    assert counts["severity"].iloc[0] == "critical"
    assert len(at.get("plotly_chart")) == 2  # the bar and the trend
    (worst,) = frames_with(at, "count")
    assert set(worst["user"]) == {user for user, codes in _codes(scans).items() if codes}
    assert worst.set_index("user").loc[world.stale, "open"] == f"user?user={world.stale}"
    assert list(worst.columns[:2]) == ["email", "user"]  # the person first, the key beside
    emails = dict(zip(worst["user"], worst["email"], strict=True))
    assert emails[world.stale] == world.email(world.stale)
    assert "scan_now" not in [button.key for button in at.button]
    assert "Only admins start scans" in texts(at)


def test_a_finding_on_the_fleet_page_opens_the_users_with_it(
    app_as: Callable[..., AppTest], world: UserWorld, scans: tuple[ScanResult, ...]
) -> None:
    at = open_page(app_as("support"), "fleet")
    (counts,) = frames_with(at, "what it means")
    index = list(counts["code"]).index("STALE_VERSION")
    at.session_state["findings_by_code"] = {
        "selection": {"rows": [index], "columns": [], "cells": []}
    }
    at.run()
    assert not at.exception, at.exception
    assert at.query_params["code"] == "STALE_VERSION"
    assert "Users" in [title.value for title in at.title]
    shown = frames_with(at, "training status")[0]  # the Users table, filtered by the code
    stale_users = {user for user, codes in _codes(scans).items() if "STALE_VERSION" in codes}
    assert set(shown["user id" if "user id" in shown else "user"]) == stale_users


def test_a_worst_user_row_opens_the_user(
    app_as: Callable[..., AppTest], world: UserWorld, scans: tuple[ScanResult, ...]
) -> None:
    at = open_page(app_as("product"), "fleet")
    worst: pd.DataFrame = frames_with(at, "count")[0]
    index = list(worst["user"]).index(world.stale)
    at.session_state["worst_users"] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert f"User {world.stale}" in texts(at)
