"""Drafts for the retrain tests, opened through the core as the page and the command line
open them (``core.retrain.opening.open_retrain``), and the sandbox's counters.

Why: a confirmation needs every photo checked. The twelve uploads every test draft gets
are the same files, so their checks are measured once per session with the real measuring
processes (``uploads`` fixture) and written to each draft as the worker writes them;
only the measuring is shared, never its result invented.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from core.retrain.draft import rejudge
from core.retrain.measure import PhotoMeasurer
from core.retrain.opening import open_retrain
from core.retrain.submit import NewPhoto, confirm
from core.retrain.tables import retrain_photos, retrains
from core.roles import Actor, Role
from core.schema import app_metadata
from tests.conftest import quick_gateway
from tests.jobs.conftest import World
from tests.photos import face_photo

ADMINS = [Actor(f"admin{index}@staff.test", Role.ADMIN) for index in range(20)]
PHOTOS = 12
REASON = "images got worse after the last retrain"
TRAININGS_PATH = r"^/v1/models/[^/]+/[^/]+/versions/[^/]+/trainings$"


@dataclass(frozen=True)
class MeasuredUpload:
    name: str
    content: bytes
    facts: dict[str, Any]
    thumbnail: bytes | None


def measure_uploads(measurer: PhotoMeasurer) -> tuple[MeasuredUpload, ...]:
    """The twelve uploads (1280 px faces of one person), each measured for real."""
    files = [(f"selfie-{index}.jpg", face_photo(index, long_side=1280)) for index in range(PHOTOS)]
    measured = dict(
        measurer.measure(
            (position, name, content) for position, (name, content) in enumerate(files)
        )
    )
    uploads = []
    for position, (name, content) in enumerate(files):
        result = measured[position]
        assert result.facts is not None, result.unreadable
        uploads.append(MeasuredUpload(name, content, result.facts.to_dict(), result.thumbnail))
    return tuple(uploads)


def open_checked_draft(
    world: World,
    user_id: str,
    uploads: Sequence[MeasuredUpload],
    *,
    actor: Actor = ADMINS[0],
) -> int:
    """A draft of ``user_id`` with the uploads, checked as the worker checks them."""
    gateway = quick_gateway(world.sandbox_url)
    try:
        opened = open_retrain(
            app_engine=world.engine,
            ops_engine=world.engine,
            gateway=gateway,
            actor=actor,
            user_id=user_id,
            photos=[NewPhoto(upload.name, "upload", upload.content) for upload in uploads],
        )
    finally:
        gateway.close()
    with world.engine.begin() as conn:
        for position, upload in enumerate(uploads):
            conn.execute(
                update(retrain_photos)
                .where(
                    retrain_photos.c.retrain_id == opened.retrain_id,
                    retrain_photos.c.position == position,
                )
                .values(facts=upload.facts, thumbnail=upload.thumbnail)
            )
        rejudge(conn, opened.retrain_id)
    return opened.retrain_id


def confirm_draft(world: World, actor: Actor, retrain_id: int) -> int:
    with world.engine.begin() as conn:
        return confirm(conn, actor, retrain_id, confirm_token=uuid.uuid4().hex, reason=REASON)


def creates(world: World, what: str = "trainings.create") -> int:
    """How many creates of ``what`` the sandbox carried out (all of them, paid)."""
    stats = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(stats.get(what, 0))


@contextmanager
def fault(world: World, **rule: Any) -> Iterator[None]:
    httpx.post(f"{world.sandbox_url}/_sandbox/faults", json=rule).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{world.sandbox_url}/_sandbox/faults").raise_for_status()


def app_row(world: World, user_id: str) -> dict[str, Any]:
    user_models = app_metadata.tables["user_models"]
    with world.engine.connect() as conn:
        return dict(
            conn.execute(select(user_models).where(user_models.c.user_id == user_id))
            .mappings()
            .one()
        )


def retrain_row(world: World, retrain_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
