"""A small world of users for the Users/User tests, made through the real sandbox and a real
database: each kind of row the audits found, plus healthy ones and fillers for paging.

Why it exists: the pages and ``core.users`` are only worth testing against the shapes the
app really produced, so every model and version here comes from a real (sandbox) training
of a real selfie ZIP, and every row is inserted into the app's own tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Connection

from core.gateway.client import build_client
from core.gateway.gateway import ReplicateGateway
from core.gateway.limits import RateLimits
from core.gateway.retry import RetryPolicy
from core.gateway.values import Training
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.schema import user_models, users
from tests.photos import selfie_zip
from tests.waits import until_ended

OWNER = "sandrasocial"
TEST_TOKEN = "r8_usersWorldTestToken42"
NOW = datetime(2026, 1, 15, 12, 0, 0)
FILLERS = 60
HEALTHY_TRIGGER = "user5040000c"
STALE_TRIGGER = "user51a1e000"


@contextmanager
def gateway_on(base_url: str, *, total_seconds: float = 15.0) -> Iterator[ReplicateGateway]:
    """A gateway on the sandbox with quick retries; its HTTP session closes afterwards."""
    client = build_client(TEST_TOKEN, base_url, timeout=httpx.Timeout(5.0))
    try:
        yield ReplicateGateway(
            client,
            limits=RateLimits.per_minute(60_000, 60_000),
            policy=RetryPolicy(base_delay=0.01, max_delay=0.1, total_seconds=total_seconds),
        )
    finally:
        client.close()


def train(gateway: ReplicateGateway, destination: str, zip_url: str, trigger: str) -> Training:
    """One sandbox training into ``destination``, waited for until it ends."""
    training = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        destination,
        {"input_images": zip_url, "trigger_word": trigger, "steps": 1400, "lora_rank": 40},
    )
    training = until_ended(
        lambda: gateway.get_training(training.id), timeout=60, what=f"training {training.id}"
    )
    assert training.status == "succeeded", training.error
    return training


@dataclass(frozen=True)
class ReplicateWorld:
    """Models made on the sandbox; versions newest first."""

    healthy_model: str
    healthy_training: Training
    stale_model: str
    stale_trainings: tuple[Training, ...]  # oldest first, as trained

    @property
    def healthy_version(self) -> str:
        assert self.healthy_training.version_hash is not None
        return self.healthy_training.version_hash

    @property
    def stale_versions(self) -> tuple[str, ...]:
        """Newest first."""
        return tuple(t.version_hash or "" for t in reversed(self.stale_trainings))


def seed_replicate(gateway: ReplicateGateway) -> ReplicateWorld:
    """One model trained once, one trained three times (the stale user's), each with the
    trigger word the app gives its user (``user`` + the id's first 8 characters), so the
    training ledger attaches them to their users as it would in production."""
    zip_url = gateway.upload_file(
        selfie_zip(10, long_side=400), filename="images.zip", content_type="application/zip"
    ).url
    healthy_model = f"{OWNER}/user-healthy1-selfie-lora"
    stale_model = f"{OWNER}/user-stale001-selfie-lora"
    gateway.create_model(healthy_model)
    gateway.create_model(stale_model)
    healthy = train(gateway, healthy_model, zip_url, HEALTHY_TRIGGER)
    stale = tuple(train(gateway, stale_model, zip_url, STALE_TRIGGER) for _ in range(3))
    return ReplicateWorld(healthy_model, healthy, stale_model, stale)


@dataclass(frozen=True)
class UserWorld:
    """User ids of each kind of row, and the Replicate facts behind them."""

    replicate: ReplicateWorld
    healthy: str = "5040000c-5ce6-4114-8319-6ec1a632f749"
    stale: str = "51a1e000-0000-4000-8000-000000000001"
    prefixed: str = "9f1e2d3c-0000-4000-8000-000000000002"  # owner/name:hash stored
    foreign: str = "45038279"  # legacy id; stores the trainer's version hash
    malformed: str = "bad-row-0001"  # NULL model id, garbage version and training id
    missing_model: str = "c0ffee00-0000-4000-8000-000000000003"  # model 404
    no_row: str = "a11ce000-0000-4000-8000-000000000004"  # users row only

    def email(self, user_id: str) -> str:
        return f"{user_id[:8]}@example.test"

    @property
    def special(self) -> tuple[str, ...]:
        return (
            self.healthy,
            self.stale,
            self.prefixed,
            self.foreign,
            self.malformed,
            self.missing_model,
            self.no_row,
        )


def _model_row(
    user_id: str,
    trigger: str,
    *,
    model_id: str | None,
    version: str | None,
    training: Training | None,
    status: str = "completed",
    updated_at: datetime = NOW,
) -> dict[str, object]:
    return {
        "user_id": user_id,
        "replicate_model_id": model_id,
        "replicate_version_id": version,
        "trigger_word": trigger,
        "training_status": status,
        "training_id": training.id if training else None,
        "lora_weights_url": training.output_weights if training else None,
        "lora_scale": 1.0,
        "training_progress": 100,
        "model_type": "flux-dev-lora",
        "created_at": updated_at - timedelta(days=30),
        "updated_at": updated_at,
        "started_at": updated_at - timedelta(minutes=20),
        "completed_at": updated_at,
    }


def insert_world(
    conn: Connection, replicate: ReplicateWorld, *, fillers: int = FILLERS
) -> UserWorld:
    """Insert the users and model rows (no commit: the caller owns the transaction)."""
    world = UserWorld(replicate)
    stamps = {
        user_id: NOW - timedelta(minutes=index) for index, user_id in enumerate(world.special)
    }
    user_rows, model_rows = [], []
    for user_id, at in stamps.items():
        user_rows.append(
            {
                "id": user_id,
                "email": world.email(user_id),
                "plan": "sselfie-studio",
                "created_at": at - timedelta(days=60),
                "updated_at": at,
            }
        )
    healthy_training = replicate.healthy_training
    stale_latest = replicate.stale_trainings[-1]
    model_rows += [
        _model_row(
            world.healthy,
            HEALTHY_TRIGGER,
            model_id=replicate.healthy_model,
            version=replicate.healthy_version,
            training=healthy_training,
            updated_at=stamps[world.healthy],
        ),
        # Three trainings, but the row still holds the first version: 2 behind.
        _model_row(
            world.stale,
            STALE_TRIGGER,
            model_id=replicate.stale_model,
            version=replicate.stale_versions[-1],
            training=stale_latest,
            updated_at=stamps[world.stale],
        ),
        _model_row(
            world.prefixed,
            "user9f1e2d3c",
            model_id=replicate.healthy_model,
            version=healthy_training.output_version,
            training=healthy_training,
            updated_at=stamps[world.prefixed],
        ),
        _model_row(
            world.foreign,
            "user45038279",
            model_id=replicate.stale_model,
            version=FAST_FLUX_TRAINER_VERSION,
            training=stale_latest,
            updated_at=stamps[world.foreign],
        ),
        _model_row(
            world.malformed,
            "userbadrow",
            model_id=None,
            version="  not-a-version\n",
            training=None,
            status="weird-status",
            updated_at=stamps[world.malformed],
        )
        | {"training_id": "no such/training id", "lora_scale": None},
        _model_row(
            world.missing_model,
            "userc0ffee00",
            model_id=f"{OWNER}/user-c0ffee00-selfie-lora",
            version="ab" * 32,
            training=None,
            updated_at=stamps[world.missing_model],
        ),
    ]
    for index in range(fillers):
        user_id = f"filler-{index:04d}"
        at = NOW - timedelta(days=1, minutes=index)
        user_rows.append(
            {
                "id": user_id,
                "email": f"filler{index:04d}@example.test",
                "plan": "free" if index % 2 else "sselfie-studio",
                "created_at": at - timedelta(days=60),
                "updated_at": at,
            }
        )
        if index % 3 == 0:
            model_rows.append(
                _model_row(
                    user_id,
                    f"userfill{index:04d}",
                    model_id=None,
                    version=None,
                    training=None,
                    status="pending",
                    updated_at=at,
                )
            )
    conn.execute(users.insert(), user_rows)
    conn.execute(user_models.insert(), model_rows)
    return world
