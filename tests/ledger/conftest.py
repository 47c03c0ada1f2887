"""Ledger fixtures: the app's rows written literally, and trainings started on the sandbox
the way the app starts them (ZIP in the blob store under ``training/{user_id}/``).

Why: the ledger reads Replicate's history and the app's one row per user; these make
both sides real (PostgreSQL rows in the rolled-back ``conn``, sandbox trainings over
HTTP) without the demo world's 20 s seeding.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Connection, insert

from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Training
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from core.sandbox.server import RunningSandbox
from core.schema import user_models, users
from tests.photos import selfie_zip
from tests.waits import until_ended

OWNER = "sandrasocial"
_stamps = itertools.count(1_700_000_000_000)


@dataclass
class AppWorld:
    """Writes the app's side (rows) and plays the app's training route on the sandbox."""

    conn: Connection
    gateway: ReplicateGateway
    blobs: httpx.Client

    def add_user(
        self,
        user_id: str,
        *,
        trigger_word: str | None = None,
        model_id: str | None = None,
        training_id: str | None = None,
        status: str = "completed",
    ) -> None:
        self.conn.execute(insert(users).values(id=user_id, email=f"{user_id}@example.com"))
        self.conn.execute(
            insert(user_models).values(
                user_id=user_id,
                trigger_word=trigger_word or f"user{user_id[:8]}",
                replicate_model_id=model_id,
                training_id=training_id,
                training_status=status,
            )
        )

    def put_zip(self, user_id: str, content: bytes) -> str:
        """Store a ZIP where the app's upload route stores it; returns its public URL."""
        path = f"training/{user_id}/{next(_stamps)}-images.zip"
        response = self.blobs.put(
            f"/_blob/{path}", content=content, headers={"content-type": "application/zip"}
        )
        response.raise_for_status()
        return str(response.json()["url"])

    def train(
        self,
        user_id: str,
        *,
        destination: str | None = None,
        trigger_word: str | None = None,
        zip_url: str | None = None,
        wait: bool = True,
    ) -> Training:
        """One training as the app starts it (destination created on first use)."""
        destination = destination or f"{OWNER}/user-{user_id[:8]}-selfie-lora"
        if self.gateway.get_model(destination) is None:
            self.gateway.create_model(destination)
        url = zip_url or self.put_zip(user_id, small_zip())
        training = self.gateway.create_training(
            FAST_FLUX_TRAINER,
            FAST_FLUX_TRAINER_VERSION,
            destination,
            {"input_images": url, "trigger_word": trigger_word or f"user{user_id[:8]}"},
        )
        return finish(self.gateway, training) if wait else training


def small_zip() -> bytes:
    """Five small selfies: enough for the sandbox's trainer, quick to make."""
    return selfie_zip(5, long_side=300)


def finish(gateway: ReplicateGateway, training: Training) -> Training:
    return until_ended(lambda: gateway.get_training(training.id), timeout=20, what="the training")


@pytest.fixture
def blobs(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """The sandbox's public blob store (the app's Vercel Blob stand-in); no token."""
    with httpx.Client(base_url=sandbox.base_url) as http:
        yield http


@pytest.fixture
def app_world(conn: Connection, gateway: ReplicateGateway, blobs: httpx.Client) -> AppWorld:
    return AppWorld(conn, gateway, blobs)
