"""Hostile strings from data on every page: shown as their characters, never as Markdown.

Nearly everything Streamlit draws is Markdown, so a value an end user or Replicate chose
(an email, a trigger word, a training id, a photo's name in a ZIP, a training's error), a
query parameter anyone can put in a link, or an exception's message could become a link,
a picture, HTML, a colour, an icon or a formula on a staff member's screen. Here every
field a page shows holds one of ``CORPUS``:

- the app's rows: two users (``users`` and ``user_models``: id, email, plan, model id,
  version id, trigger word, status, training id, weights URL, failure reason);
- Replicate's answers: a model and a failed training made on the sandbox with a hostile
  error and input, trained on a ZIP whose photos have hostile names;
- the console's own rows those reach: an ended retrain, a comparison and its images, a
  blind-review pair, an audit record, a failed fleet scan, a staff member's email, the
  watch's reviews of a retrain of each user (sentence, reason, alert error);
- query parameters on every page (``?user=``, ``?q=``, ``?code=``, ``?comparison=`` …).

The console runs as the hostile admin (``HOSTILE_ADMIN``), through the real entry. After
every run, every Markdown string of the page (bodies, labels, help, captions, progress
texts; not code blocks, plain text or tables, which show plain text) is checked
(``_problems``): no payload may appear as written (any escape breaks it), no bare URL or
address of the corpus may read as one once the escapes are undone (GFM would link it),
no bidi control or NUL may be left, and the 3,000-character id must be cut. The test then
checks that the payloads were shown at all, as their characters.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from google.protobuf.message import Message
from PIL import Image
from sqlalchemy import Engine, insert, select, text
from streamlit.testing.v1 import AppTest

from core.compare.pairs import build_pairs
from core.compare.tables import comparison_images, comparisons, review_pairs
from core.db import make_engine
from core.gateway.values import Training
from core.ledger.reviews import retrain_reviews
from core.ledger.sync import sync_ledger
from core.retrain.draft import load_previous
from core.retrain.tables import retrains
from core.review.store import record_vote
from core.roles import Actor, Role
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from core.scan.tables import scans
from core.schema import audit_log, user_models, users
from tests.pages.conftest import new_app, unescaped
from tests.photos import face_photo
from tests.user_world import OWNER, UserWorld, gateway_on
from tests.waits import until_ended

pytestmark = pytest.mark.timeout(300)

EVIL = "evil.example"
LINK = "[click here](https://evil.example/x)"
IMAGE = "![i](https://evil.example/i.png)"
HTML_LINK = '<a href="https://evil.example/a">a</a>'
HTML_IMAGE = "<img src=x onerror=alert(1)>"
BACKTICK = "x` [Session expired - sign in again](https://evil.example/login) `"
COLOUR = ":red[x] :red-badge[y]"
ICONS = ":material/warning: :streamlit: :material_home:"
MATH = "$x^2$"
BIDI = "\u202egpj.exe"
NUL = "nul\x00here"
LONG = "9" * 3000
BARE = "https://evil.example/bare www.evil.example me@evil.example"
TRAINING_LINK = "[t](https://evil.example/tr)"
SIGNED = "http://user:pass@host.example/w.zip?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AKIAKEY"
CORPUS = (LINK, IMAGE, HTML_LINK, HTML_IMAGE, BACKTICK, COLOUR, ICONS, MATH, BARE)
SECRETS = ("user:pass", "s3cr3tsig", "AKIAKEY")

HOSTILE_ADMIN = "[adm](https://evil.example/a)@staff.test"
H1 = "h1-[u](https://evil.example/u)"  # rows only: nothing of it exists on Replicate
H2 = "h0571e00-0000-4000-8000-00000000000e"  # a real model and trainings on the sandbox
H2_MODEL = f"{OWNER}/user-h0571e00-selfie-lora"
H2_TRIGGER = "userh0571e00"
PHOTO_NAMES = (f"{BACKTICK}.jpg", f"{HTML_IMAGE}.jpg", f"{ICONS} {MATH}.jpg")
UPLOADED = f"{LINK}.jpg"

# -- the checks -----------------------------------------------------------------------------

# A backslash escape of ASCII punctuation (what core.text.inert writes).
_ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")
# What GFM links in text and what Streamlit turns into pictures, once escapes are undone.
_LIVE_IN_TEXT = re.compile(
    r"https?://evil|www\.evil|@evil\.example|:(?:streamlit|material_home|smile):", re.I
)
# Markup no page writes itself: found outside escapes, it came from data.
_MARKUP = ("](https://evil", "![", "<a ", "<img", ":red-badge[y", "$x^2$", ":material/warning:")
# A link the page writes: its destination (percent-encoded by core.links) is not read.
_DESTINATION = re.compile(r"\]\(https?://[^)\s]*\)")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# Where a page's Markdown is: these fields of any element or block (st.text, st.code,
# st.json and tables show plain text: left out).
_MARKDOWN_FIELDS = {"body", "label", "help", "caption", "text", "title"}
_PLAIN_ELEMENTS = {"text", "code", "json", "arrow_data_frame", "dataframe"}


def _strings(message: Message) -> Iterator[str]:
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            items = value if field.is_repeated else [value]
            for item in items:
                yield from _strings(item)
        elif field.type == field.TYPE_STRING and field.name in _MARKDOWN_FIELDS:
            yield from value if field.is_repeated else [value]


def markdown_sources(at: AppTest) -> list[str]:
    """Every Markdown string the run drew (main, sidebar, dialogs), as its source."""
    found: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if isinstance(proto, Message) and getattr(node, "type", "") not in _PLAIN_ELEMENTS:
            found.extend(_strings(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)  # every block: main, sidebar, and the events (toasts, dialogs)
    return found


def _problems(source: str) -> list[str]:
    """What in one Markdown source came from data unescaped."""
    outside = _ESCAPED.sub("\x01", source)
    read = unescaped(source.replace("\u2060", "\x01"))  # the joiners still in place
    problems = [f"payload as written: {payload!r}" for payload in CORPUS if payload in source]
    problems += [f"markup outside escapes: {mark!r}" for mark in _MARKUP if mark in outside]
    problems += [f"read as a link or picture: {m!r}" for m in _LIVE_IN_TEXT.findall(read)]
    problems += ["a bidi control"] * bool(_BIDI.search(source))
    problems += ["a NUL"] * ("\x00" in source)
    problems += ["the long id uncut"] * ("9" * 400 in _DESTINATION.sub("", source))
    problems += [f"a secret of a URL: {secret!r}" for secret in SECRETS if secret in source]
    return problems


def check(at: AppTest, where: str) -> str:
    """No problem in any Markdown the run drew; what it reads as, for coverage checks."""
    assert not at.exception, (where, [e.stack_trace for e in at.exception])
    sources = markdown_sources(at)
    found = {source[:160]: _problems(source) for source in sources if _problems(source)}
    assert not found, (where, found)
    return "\n".join(unescaped(source) for source in sources)


# -- the world ------------------------------------------------------------------------------


def _zip(names: tuple[str, ...], count: int = 10) -> bytes:
    """A training ZIP: the hostile names first, then plain ones."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(count):
            name = names[index] if index < len(names) else f"image_{index:02d}.jpg"
            archive.writestr(name, face_photo(index=index, long_side=512))
    return buffer.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 80), (120, 90, 60)).save(out, format="JPEG")
    return out.getvalue()


def _with_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        (
            parts.scheme,
            f"user:pass@{parts.netloc}",
            parts.path,
            "X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AKIAKEY",
            "",
        )
    )


@dataclass(frozen=True)
class Hostile:
    comparison_id: int
    audit_id: int
    failed: Training  # the row's training: a hostile error and input


def _replicate(base_url: str) -> tuple[Training, Training]:
    """H2's model, trained once on the hostile ZIP, then a training that fails with a
    hostile error and input."""
    with gateway_on(base_url) as gateway:
        zip_url = gateway.upload_file(
            _zip(PHOTO_NAMES), filename="images.zip", content_type="application/zip"
        ).url
        gateway.create_model(H2_MODEL, description=f"{LINK} {HTML_IMAGE}")
        good = gateway.create_training(
            FAST_FLUX_TRAINER,
            FAST_FLUX_TRAINER_VERSION,
            H2_MODEL,
            {"input_images": zip_url, "trigger_word": H2_TRIGGER, "steps": 1000},
        )
        good = until_ended(lambda: gateway.get_training(good.id), timeout=60)
        assert good.status == "succeeded", good.error
        httpx.post(
            f"{base_url}/_sandbox/trainings/next",
            json={"outcome": "fail", "error": f"{LINK} {BARE} {BIDI} {ICONS}"},
        ).raise_for_status()
        bad = gateway.create_training(
            FAST_FLUX_TRAINER,
            FAST_FLUX_TRAINER_VERSION,
            H2_MODEL,
            {"input_images": _with_userinfo(zip_url), "trigger_word": COLOUR, "steps": 1000},
        )
        bad = until_ended(lambda: gateway.get_training(bad.id), timeout=60)
        assert bad.status == "failed"
    return good, bad


def _app_rows(good: Training, bad: Training) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime(2026, 1, 15, 12, 0, 0)
    people: list[dict[str, Any]] = [
        {"id": H1, "email": f"{HTML_IMAGE}@{EVIL}", "plan": f"{COLOUR} {MATH}", "updated_at": now},
        {"id": H2, "email": f"{MATH}@{EVIL}", "plan": BIDI, "updated_at": now},
    ]
    rows: list[dict[str, Any]] = [
        {
            "user_id": H1,
            "replicate_model_id": "[m](https://evil.example/m)",
            "replicate_version_id": BACKTICK,
            "trigger_word": f"{ICONS} {IMAGE}",
            "training_status": HTML_LINK,
            "training_id": TRAINING_LINK + LONG,
            "lora_weights_url": SIGNED,
            "failure_reason": f"{BIDI} {BARE}",  # PostgreSQL text holds no NUL
            "model_name": LINK,
            "updated_at": now,
        },
        {
            "user_id": H2,
            "replicate_model_id": H2_MODEL,
            "replicate_version_id": good.version_hash,
            "trigger_word": H2_TRIGGER,
            "training_status": "completed",
            "training_id": bad.id,
            "lora_weights_url": SIGNED,
            "failure_reason": bad.error,
            "model_name": None,
            "updated_at": now,
        },
    ]
    return people, rows


def _console_rows(conn: Any) -> tuple[int, int]:
    """What the console keeps that those values reach: a comparison (and its blind-review
    pair, voted once), an ended retrain, the watch's reviews, an audit record, a failed
    fleet scan, staff."""
    conn.execute(
        text("INSERT INTO ops.staff (email, role) VALUES (:email, 'admin')"),
        {"email": HOSTILE_ADMIN},
    )
    columns = [
        {
            "letter": letter,
            "name": name,
            "label": label,
            "note": HTML_LINK,
            "model_id": "[m](https://evil.example/m)",
            "version_id": version,
            "input": {"hf_lora": SIGNED, "prompt": LINK},
            "ignored": [],
        }
        for letter, name, label, version in (
            ("A", "stored", LINK, BACKTICK),
            ("B", ICONS, f"B: {ICONS}", "b" * 64),  # a name heads its column
            ("C", "v2", MATH, "c" * 64),
        )
    ]
    comparison_id = conn.execute(
        insert(comparisons)
        .values(
            user_id=H1,
            requested_by=HOSTILE_ADMIN,
            requested_role="admin",
            confirm_token="hostile-comparison",
            status="finished",
            prompt=f"{IMAGE} {MATH}",
            preset=COLOUR,
            category="headshot",
            seeds=[7],
            columns=columns,
            reference={"photos": 3, "faces": 2, "problem": BARE},
            verdict=[f"{LINK} {BIDI}"],
            estimate_usd=0.09,
            finished_at=datetime.now(UTC),
        )
        .returning(comparisons.c.id)
    ).scalar_one()
    scores = {"face_found": True, "face_score": 0.9, "identity": 0.3, "sharpness": 90}
    for letter, version, status in (("A", BACKTICK, "succeeded"), ("B", "b" * 64, "succeeded")):
        conn.execute(
            insert(comparison_images).values(
                comparison_id=comparison_id,
                letter=letter,
                seed=7,
                version_id=version,
                input={"seed": 7},
                status=status,
                prediction_id=f"[p{letter}](https://evil.example/p)",
                preview=_jpeg(),
                scores={**scores, "identity_place": HTML_IMAGE},
            )
        )
    conn.execute(
        insert(comparison_images).values(
            comparison_id=comparison_id,
            letter="C",
            seed=7,
            version_id="c" * 64,
            input={"seed": 7},
            status="failed",
            error=f"{LINK} {MATH}",
        )
    )
    assert build_pairs(conn, comparison_id) == 1
    pair_id = conn.execute(
        select(review_pairs.c.id).where(review_pairs.c.comparison_id == comparison_id)
    ).scalar_one()
    record_vote(conn, Actor("product@staff.test", Role.PRODUCT), pair_id, "left", x_on_left=True)
    conn.execute(
        insert(retrains).values(
            user_id=H2,
            requested_by=HOSTILE_ADMIN,
            requested_role="admin",
            reason=LINK,
            status="succeeded",
            trainer_model=FAST_FLUX_TRAINER,
            trainer_version=FAST_FLUX_TRAINER_VERSION,
            destination="[d](https://evil.example/d)/model",
            trigger_word=IMAGE,
            training_id=f"[r](https://{EVIL}/r)",
            submitted_at=datetime.now(UTC) - timedelta(hours=1),
            finished_at=datetime.now(UTC),
            error=f"{MATH} {HTML_LINK}",
            new_version=IMAGE,
            comparison_id=comparison_id,
            decision="kept",
            decided_by=HTML_LINK,
            decision_reason=f"{BIDI} {COLOUR}",
        )
    )
    audit_id = conn.execute(
        insert(audit_log)
        .values(
            actor_email=HOSTILE_ADMIN,
            actor_role="admin",
            action=f"repair:{COLOUR}",
            target_user_id=H1,
            before={"lora_weights_url": SIGNED},
            after={"replicate_version_id": BACKTICK},
            reason=LINK + LONG,
            details={"note": HTML_IMAGE, "url": SIGNED},
        )
        .returning(audit_log.c.id)
    ).scalar_one()
    now = datetime.now(UTC)
    conn.execute(  # the watch's reviews of a retrain of each hostile user
        insert(retrain_reviews),
        [
            {
                "training_id": f"[w](https://{EVIL}/w)",
                "user_id": H2,
                "training_status": "succeeded",
                "ended_at": now - timedelta(minutes=5),
                "status": "done",
                "verdict": "worse",
                "sentence": f"{LINK} {BARE} {BIDI}",
                "codes": [COLOUR],
                "previous_version": BACKTICK,
                "new_version": IMAGE,
                "photos_before": 3,
                "photos_after": 1,
                "comparison_id": comparison_id,
                "skipped": None,
                "alert_status": "failed",
                "alert_error": f"{HTML_LINK} {SIGNED}",
            },
            {
                "training_id": TRAINING_LINK + LONG,
                "user_id": H1,
                "training_status": "failed",
                "ended_at": now - timedelta(hours=2),
                "status": "done",
                "verdict": "broken",
                "sentence": f"{HTML_IMAGE} {ICONS} {MATH}",
                "codes": [],
                "previous_version": None,
                "new_version": None,
                "photos_before": None,
                "photos_after": None,
                "comparison_id": None,
                "skipped": f"{COLOUR} {HTML_IMAGE}",
                "alert_status": "failed",
                "alert_error": f"{BACKTICK} {SIGNED}",
            },
        ],
    )
    conn.execute(
        insert(scans).values(
            status="failed",
            users_total=2,
            users_scanned=1,
            requested_by=HTML_LINK,
            error=f"{LINK} {BARE}",
            finished_at=datetime.now(UTC),
        )
    )
    return int(comparison_id), int(audit_id)


@pytest.fixture(scope="module")
def hostile(world: UserWorld, pages_database_url: str, sandbox_server: RunningSandbox) -> Hostile:
    """The module's world plus the hostile one (committed; the module's database is its own)."""
    good, bad = _replicate(sandbox_server.base_url)
    engine = make_engine(pages_database_url)
    try:
        people, rows = _app_rows(good, bad)
        with engine.begin() as conn:
            conn.execute(users.insert(), people)
            conn.execute(user_models.insert(), rows)
            comparison_id, audit_id = _console_rows(conn)
        with gateway_on(sandbox_server.base_url) as gateway:
            sync_ledger(ops_engine=engine, app_engine=engine, gateway=gateway)
    finally:
        engine.dispose()
    return Hostile(comparison_id, audit_id, bad)


@pytest.fixture
def console(live_env: None, hostile: Hostile) -> Hostile:
    """LIVE settings on the module's database, with the hostile world in it."""
    return hostile


def _console(page: str | None = None, /, **query: str) -> AppTest:
    """The console as the hostile admin, on ``page`` with ``query``."""
    at = new_app(email=HOSTILE_ADMIN).run()
    if page is not None:
        at.switch_page(f"../pages/{page}.py")
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
    return at


def _assert_shown(read: str, *pieces: str) -> None:
    for piece in pieces:
        assert piece in read, (piece, read[:3000])


# -- the pages ------------------------------------------------------------------------------


def test_the_user_page_shows_hostile_rows_and_replicate_answers_as_text(console: Hostile) -> None:
    read = check(_console("user", user=H1), "user H1")
    _assert_shown(read, f"User {H1}", TRAINING_LINK, HTML_LINK, "[m](https://evil.example/m)")
    at = _console("user", user=H2)
    read = check(at, "user H2")
    _assert_shown(read, LINK, BARE, "\ufffdgpj.exe", ICONS)
    cells = " ".join(frame.value.to_csv() for frame in at.dataframe)
    assert not [secret for secret in SECRETS if secret in cells], cells
    assert "X-Amz-Signature=[redacted]" in cells


@pytest.mark.parametrize(
    "asked", [LINK, TRAINING_LINK + LONG, f"{HTML_IMAGE}{BIDI}{NUL}"], ids=["link", "long", "html"]
)
def test_a_hostile_user_link_is_shown_as_text(console: Hostile, asked: str) -> None:
    read = check(_console("user", user=asked), f"?user={asked[:40]}")
    if "\x00" not in asked:
        _assert_shown(read, asked[:200])


def test_the_users_and_fleet_pages_show_hostile_values_as_text(console: Hostile) -> None:
    read = check(_console("users", q=LINK, code=IMAGE, severity=HTML_LINK, page=MATH), "users")
    _assert_shown(read, LINK)  # the failed scan's error
    read = check(_console("fleet"), "fleet")
    _assert_shown(read, LINK, HTML_LINK)


def test_recent_retrains_and_the_user_banner_show_hostile_reviews_as_text(
    console: Hostile,
) -> None:
    at = _console("fleet", view="Recent retrains")
    read = check(at, "fleet recent retrains")
    assert "2 retrains ended in the last 7 days" in read
    cells = " ".join(frame.value.to_csv() for frame in at.dataframe)
    assert LINK in cells and HTML_IMAGE in cells  # tables show plain text
    assert not [secret for secret in SECRETS if secret in cells], cells
    check(_console("fleet", view=LINK, days=MATH), "fleet ?view= ?days=")
    read = check(_console("user", user=H2), "user H2 banner")
    _assert_shown(read, "Last retrain: Worse", f"{LINK} {BARE}", HTML_LINK)
    read = check(_console("user", user=H1), "user H1 banner")
    _assert_shown(read, "Last retrain: Broken", HTML_IMAGE, f"no comparison: {COLOUR}", BACKTICK)


def test_the_compare_page_shows_a_hostile_comparison_as_text(console: Hostile) -> None:
    read = check(_console("compare", comparison=str(console.comparison_id)), "comparison")
    _assert_shown(read, H1, HOSTILE_ADMIN, IMAGE, LINK, HTML_LINK, HTML_IMAGE, BARE, ICONS)
    check(_console("compare", comparison=LINK), "?comparison=")
    read = check(_console("compare", user=H1, columns=IMAGE), "compare H1")
    _assert_shown(read, f"{ICONS} {IMAGE}")
    check(_console("compare", user=LINK), "compare ?user=")


def test_the_review_page_shows_hostile_pairs_and_results_as_text(console: Hostile) -> None:
    at = _console("review", user=H1)
    read = check(at, "review H1")
    _assert_shown(read, IMAGE, H1)
    pair = at.session_state["review_pair"]
    at.button(key=f"vote_left_{pair.pair_id}").click().run()
    check(at, "review voted")
    check(_console("review"), "review overview")


def test_the_retrain_page_shows_hostile_photo_names_and_retrains_as_text(
    console: Hostile, engine: Engine, sandbox_server: RunningSandbox
) -> None:
    at = _console("retrain", user=H2)
    read = check(at, "retrain H2")
    _assert_shown(read, LINK, HTML_LINK, MATH)  # the retrain that ended, and its decision
    start = next(button for button in at.button if button.label == "Start a retrain")
    start.click().run()
    check(at, "retrain draft")
    with engine.connect() as conn:
        draft = conn.execute(
            select(retrains.c.id).where(retrains.c.user_id == H2, retrains.c.status == "draft")
        ).scalar_one()
    with gateway_on(sandbox_server.base_url) as gateway:  # the worker's part
        assert load_previous(engine, gateway, draft) is None
    at.file_uploader[0].set_value([(UPLOADED, _jpeg(), "image/jpeg")])
    next(button for button in at.button if button.label == "Add photos").click().run()
    at.run()
    read = check(at, "retrain photos")
    _assert_shown(read, *PHOTO_NAMES[:2], UPLOADED)
    check(_console("retrain", user=H1), "retrain H1")
    check(_console("retrain", user=LINK), "retrain ?user=")


def test_the_audit_and_settings_pages_show_hostile_records_as_text(console: Hostile) -> None:
    at = _console("audit")
    records = list(at.dataframe[0].value["id"])
    at.session_state["audit_table"] = {
        "selection": {"rows": [records.index(console.audit_id)], "columns": [], "cells": []}
    }
    at.run()
    read = check(at, "audit record")
    _assert_shown(read, HOSTILE_ADMIN, COLOUR, H1, LINK)
    cells = " ".join(frame.value.to_csv() for frame in at.dataframe)
    assert not [secret for secret in SECRETS if secret in cells], cells
    check(_console("audit", action=COLOUR, actor_email=LINK, target=H1), "audit filters")
    check(_console("settings"), "settings")
    read = check(_console(), "sidebar")
    _assert_shown(read, HOSTILE_ADMIN)
