"""Retrain one demo user the way the app does, bugs and all, so the console's watch has a
real retrain to catch (``python -m core.demo --app-retrain USER_ID``).

The app's upload route (app-facts, "Training"), step by step, through the sandbox's API
with the official client (the gateway), as the demo world's histories were made:

1. only the user's NEW photos (the app never adds the earlier ones): shots of their look
   the demo world has not used yet, re-encoded by the browser level after level until
   the ZIP is under 4 MB; ``squeeze``: straight to its last level (600 px at JPEG quality
   0.55), where a phone's full-size photos end up;
2. the ZIP in the public blob store under ``training/{user_id}/``;
3. a retrain only when the row says ``completed`` (and is no test row): the row's trigger
   word and model; otherwise the first training's;
4. the row reset to ``pending``;
5. the destination model created on 404;
6. the training created on the app's trainer with the app's adaptive input;
7. the row: the training id, the model, ``training``.

Then, once the training ended (waited for here, as if the user kept the progress page
open), what the progress poll writes. The app has had two retrain routes, and the demo
shows the bug of each: a retrain meant to succeed goes through the older route, which
skipped clearing the version at step 4 and whose poll only filled an empty version, so
the row keeps the previous version (STALE_VERSION); one meant to fail (``fail``: the
sandbox fails it) goes through today's route, which cleared the version at step 4, so the
user is left with none (VERSION_LOST). Nothing here is audited: it is the app acting on
the demo world, not staff, and it refuses anything but DEMO and its sandbox.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, update

from core.app import calls as app_calls
from core.config import Mode
from core.demo import app_row
from core.demo.app_row import ModelRow
from core.demo.history import naive_utc, now_ms, utc_now
from core.demo.personas import CAST
from core.demo.photos import GOOD_LONG_SIDE, photo_set, zip_of
from core.demo.script import TRAINING_FAILURE, Completion
from core.demo.seed import check_is_sandbox
from core.errors import ConfigError, DataRejected, NotFound, ReplicateUnavailable
from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.schema import user_models, users

# A typical retrain upload: a handful of new selfies, fewer than the first training's.
DEFAULT_PHOTOS = 8
DEFAULT_WAIT_SECONDS = 180.0  # DEMO's sandbox takes about 21 s per training
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 5.0
# Looks of users who are no persona (synthetic users): away from the personas' 1-17.
OTHER_LOOKS = 9_000


@dataclass(frozen=True)
class BrowserZip:
    """The ZIP the browser made: the photos re-encoded at one level of its ladder."""

    content: bytes
    photos: int
    long_side: int
    jpeg_quality: int  # percent


@dataclass(frozen=True)
class RowChange:
    """One column the app wrote: its value before and after."""

    column: str
    before: Any
    after: Any


@dataclass(frozen=True)
class AppRetrainResult:
    """What ``app_retrain`` did on Replicate (the sandbox) and to the user's row."""

    user_id: str
    training_id: str
    training_status: str  # how it ended, or where it was when the wait ran out
    ended: bool  # whether it ended within the wait (else the row stays ``training``)
    destination: str
    trigger_word: str
    retrain: bool  # the app took it for a retrain (row ``completed``), not a first training
    zip_url: str
    photos: int
    long_side: int
    jpeg_quality: int
    version_before: str | None  # the row's version before the training
    new_version: str | None  # the version the training made (succeeded only)
    row_version: str | None  # the row's version after
    at_start: tuple[RowChange, ...]  # what the upload route wrote (steps 4 and 7)
    at_end: tuple[RowChange, ...]  # what the progress poll wrote; empty: it had not ended

    @property
    def stale(self) -> bool:
        """The training made a version the row does not hold."""
        return (
            self.new_version is not None
            and self.row_version is not None
            and app_calls.bare_version(self.row_version) != self.new_version
        )

    @property
    def version_lost(self) -> bool:
        """The row holds no version after a training that ended without one."""
        return self.ended and self.new_version is None and not self.row_version


def app_retrain(
    *,
    app_engine: Engine,
    gateway: ReplicateGateway,
    sandbox_url: str,
    mode: Mode,
    user_id: str,
    photos: int | None = None,
    squeeze: bool = False,
    fail: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    owner: str = app_calls.APP_OWNER,
    progress: Callable[[str], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> AppRetrainResult:
    """Retrain ``user_id`` as the app's upload route does (see the module's docstring):
    exactly one training on the sandbox, the row written at its start and, once it ended
    within ``wait_seconds``, at its end. ``ConfigError`` outside DEMO or off the sandbox,
    ``NotFound`` for a user the demo database lacks, ``DataRejected`` for a photo count
    the app would refuse; Replicate's errors as the gateway raises them."""
    say = progress or (lambda message: None)
    if mode is not Mode.DEMO:
        raise ConfigError(
            "The app's retrain is played only in DEMO, on the demo world and its sandbox; "
            "unset DATABASE_URL and REPLICATE_API_TOKEN."
        )
    count = DEFAULT_PHOTOS if photos is None else photos
    if not app_calls.UPLOAD_MIN_PHOTOS <= count <= app_calls.UPLOAD_MAX_PHOTOS:
        raise DataRejected(
            f"{count} photos: the app takes {app_calls.UPLOAD_MIN_PHOTOS} to "
            f"{app_calls.UPLOAD_MAX_PHOTOS} (its server refuses fewer than "
            f"{app_calls.UPLOAD_MIN_PHOTOS}, its upload page asks for at most "
            f"{app_calls.UPLOAD_MAX_PHOTOS})."
        )
    with httpx.Client(base_url=sandbox_url.rstrip("/"), timeout=60.0) as sandbox:
        check_is_sandbox(sandbox, sandbox_url)
        row, is_test = _read_row(app_engine, user_id)
        look, first_new_shot = photo_source(user_id)
        upload = browser_zip(look, range(first_new_shot, first_new_shot + count), squeeze=squeeze)
        zip_url = _put_blob(sandbox, app_calls.training_zip_path(user_id, now_ms()), upload)
        say(
            f"uploaded {upload.photos} new photos ({upload.long_side} px, JPEG quality "
            f"{upload.jpeg_quality}) to {zip_url}"
        )
        considered = None if is_test else row  # the app's retrain test skips test rows
        retrain = app_row.is_retrain(considered)
        trigger = app_row.trigger_for_next_training(considered, user_id)
        destination = (
            row.replicate_model_id
            if retrain and row is not None and row.replicate_model_id
            else app_calls.destination_model(owner, user_id)
        )
        # The older route (kept the version) for a success, today's (cleared it) for a
        # failure: each shows its own bug (see the module's docstring).
        completion = Completion.RECORDED if fail else Completion.KEPT_PREVIOUS
        lora_scale = row.lora_scale if row is not None else 1.0
        pending = app_row.reset_for_submit(
            row,
            user_id=user_id,
            trigger_word=trigger,
            lora_scale=lora_scale,
            at=utc_now(),
            keep_version=completion is Completion.KEPT_PREVIOUS,
        )
        _write_row(app_engine, row, pending)
        if gateway.get_model(destination) is None:
            gateway.create_model(destination, visibility="private", hardware="gpu-t4")
        if fail:
            # Only this destination's next training fails: others created meanwhile
            # (a console retrain, another demo) are left alone.
            _plan_failure(sandbox, destination)
        training = gateway.create_training(
            app_calls.APP_TRAINER,
            app_calls.APP_TRAINER_VERSION,
            destination,
            app_calls.training_input(image_count=count, trigger_word=trigger, input_images=zip_url),
        )
    say(f"training {training.id} created on {app_calls.APP_TRAINER} into {destination}")
    started = app_row.submitted(
        pending,
        training=training,
        destination=destination,
        at=naive_utc(training.created_at) or utc_now(),
    )
    _write_row(app_engine, pending, started)
    training = _wait(gateway, training, wait_seconds, poll_seconds, say)
    at_start = _changes(row, started)
    ended = started
    new_version = None
    if training.is_terminal:
        newest = None
        if training.status == "succeeded":
            new_version = training.version_hash
            versions = gateway.list_versions(destination)
            newest = versions[0].id if versions else None
        ended = app_row.polled(
            started,
            training=training,
            newest_version=newest,
            completion=completion,
            at=naive_utc(training.completed_at) or utc_now(),
        )
        _write_row(app_engine, started, ended)
    return AppRetrainResult(
        user_id=user_id,
        training_id=training.id,
        training_status=training.status,
        ended=training.is_terminal,
        destination=destination,
        trigger_word=trigger,
        retrain=retrain,
        zip_url=zip_url,
        photos=upload.photos,
        long_side=upload.long_side,
        jpeg_quality=upload.jpeg_quality,
        version_before=row.replicate_version_id if row is not None else None,
        new_version=new_version,
        row_version=ended.replicate_version_id,
        at_start=at_start,
        at_end=_changes(started, ended),
    )


def photo_source(user_id: str) -> tuple[int, int]:
    """(the user's look, their first shot the demo world never uploaded): a persona's
    own look after their script's last shot; anyone else a look of their own from 0."""
    for cast in CAST:
        if cast.persona.user_id == user_id:
            used = (step.upload.first_shot + step.upload.count for step in cast.script.steps)
            return cast.profile.look, max(used, default=0)
    digest = hashlib.sha256(f"look:{user_id}".encode()).digest()
    return 100 + int.from_bytes(digest[:4], "big") % OTHER_LOOKS, 0


def browser_zip(look: int, shots: range, *, squeeze: bool) -> BrowserZip:
    """The photos as the app's browser zips them: each level of its ladder in turn until
    the ZIP is under 4 MB (never enlarged past the phone's photo); ``squeeze``: its last
    level, where a phone's full-size photos end up."""
    levels = app_calls.BROWSER_SQUEEZE_LEVELS[-1:] if squeeze else app_calls.BROWSER_SQUEEZE_LEVELS
    made: BrowserZip | None = None
    for side, quality in levels:
        long_side, percent = min(side, GOOD_LONG_SIDE), round(quality * 100)
        content = zip_of(photo_set(look, shots, long_side=long_side, jpeg_quality=percent))
        made = BrowserZip(content, len(shots), long_side, percent)
        if len(content) < app_calls.BROWSER_ZIP_LIMIT_BYTES:
            break
    assert made is not None  # the ladder has levels
    return made


# -- the row --------------------------------------------------------------------------------


def _read_row(engine: Engine, user_id: str) -> tuple[ModelRow | None, bool]:
    """The user's ``user_models`` row as the app reads it, and whether it is a test row;
    ``NotFound`` when the user is not in the demo database."""
    with engine.connect() as conn:
        known = conn.execute(select(users.c.id).where(users.c.id == user_id)).first()
        values = (
            conn.execute(select(user_models).where(user_models.c.user_id == user_id))
            .mappings()
            .first()
        )
    if known is None:
        raise NotFound(
            f"No user {user_id!r} in the demo database. `python -m core.demo --list` shows "
            "the personas and their ids."
        )
    if values is None:
        return None, False
    row = ModelRow(
        user_id=user_id,
        trigger_word=str(values["trigger_word"]),
        replicate_model_id=values["replicate_model_id"],
        replicate_version_id=values["replicate_version_id"],
        training_status=str(values["training_status"] or "pending"),
        training_id=values["training_id"],
        lora_weights_url=values["lora_weights_url"],
        lora_scale=float(values["lora_scale"]) if values["lora_scale"] is not None else 1.0,
        training_progress=int(values["training_progress"] or 0),
        failure_reason=values["failure_reason"],
        model_name=values["model_name"],
        created_at=values["created_at"] or utc_now(),
        updated_at=values["updated_at"] or utc_now(),
        started_at=values["started_at"],
        completed_at=values["completed_at"],
    )
    return row, bool(values["is_test"])


def _changes(before: ModelRow | None, after: ModelRow) -> tuple[RowChange, ...]:
    """The columns ``after`` writes over ``before`` (every column for a new row)."""
    old: Mapping[str, Any] = dataclasses.asdict(before) if before is not None else {}
    new = dataclasses.asdict(after)
    return tuple(
        RowChange(column, old.get(column), value)
        for column, value in new.items()
        if column != "user_id" and (before is None or old.get(column) != value)
    )


def _write_row(engine: Engine, before: ModelRow | None, after: ModelRow) -> None:
    """Write what the app writes: a new row, or only the columns that changed."""
    with engine.begin() as conn:
        if before is None:
            conn.execute(insert(user_models).values(after.columns()))
            return
        changed = {change.column: change.after for change in _changes(before, after)}
        if changed:
            conn.execute(
                update(user_models).where(user_models.c.user_id == after.user_id).values(changed)
            )


# -- Replicate ------------------------------------------------------------------------------


def _put_blob(sandbox: httpx.Client, path: str, upload: BrowserZip) -> str:
    """The ZIP in the public blob store (the app's Vercel Blob); its URL."""
    try:
        response = sandbox.put(
            f"/_blob/{path}", content=upload.content, headers={"content-type": "application/zip"}
        )
        response.raise_for_status()
        return str(response.json()["url"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ReplicateUnavailable(
            f"The sandbox's blob store did not take the ZIP ({exc}); nothing was trained."
        ) from exc


def _plan_failure(sandbox: httpx.Client, destination: str) -> None:
    """The sandbox fails the next training into ``destination`` (its control API)."""
    try:
        sandbox.post(
            "/_sandbox/trainings/next",
            json={"outcome": "fail", "error": TRAINING_FAILURE, "destination": destination},
        ).raise_for_status()
    except httpx.HTTPError as exc:
        raise ReplicateUnavailable(
            f"The sandbox did not plan the failure ({exc}); nothing was trained, but the row "
            "was already reset, as the app resets it before it trains."
        ) from exc


def _wait(
    gateway: ReplicateGateway,
    training: Training,
    wait_seconds: float,
    poll_seconds: float,
    say: Callable[[str], None],
) -> Training:
    """The training once it ended, or as it stood when ``wait_seconds`` ran out; a line
    at each new status, and every ``PROGRESS_EVERY_SECONDS`` while it runs."""
    started = time.monotonic()
    deadline = started + wait_seconds
    said_status, said_at = "", started
    while True:
        now = time.monotonic()
        if training.status != said_status or now - said_at >= PROGRESS_EVERY_SECONDS:
            error = f": {training.error}" if training.error else ""
            say(f"training {training.id}: {training.status} ({now - started:.0f} s){error}")
            said_status, said_at = training.status, now
        if training.is_terminal or now >= deadline:
            return training
        time.sleep(min(poll_seconds, max(0.0, deadline - now)))
        training = gateway.get_training(training.id)
