"""A small world for the job queue's tests, trained for real on the sandbox.

Six users, each with a model of their own trained twice on ZIPs of their own (twelve
distinct ZIPs in the app's blob store, so the scan has twelve photo jobs to share out);
one of them still generates from the first version (STALE_VERSION). Five small photos a
ZIP keep dlib quick; every user is therefore also DATASET_SHRANK (fewer than ten).
The rows go into the app's tables the way the app writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from core.gateway.gateway import ReplicateGateway
from core.schema import user_models, users
from tests.photos import selfie_zip
from tests.user_world import OWNER, train

USERS = 6
PHOTOS = 5
NOW = datetime(2026, 11, 1, 12, 0, 0)


@dataclass(frozen=True)
class JobsWorld:
    user_ids: tuple[str, ...]
    stale_user: str
    zip_urls: tuple[str, ...]  # every ZIP a scan's dataset checks need

    def zip_path(self, url: str) -> str:
        return url.split("://", 1)[1].split("/", 1)[1]


def build_world(engine: Engine, gateway: ReplicateGateway, base_url: str) -> JobsWorld:
    """Train the users' models on the sandbox and insert their rows (committed)."""
    user_ids = tuple(f"{index:08x}-0000-4000-8000-00000000jobs" for index in range(USERS))
    zip_urls: list[str] = []
    user_rows, model_rows = [], []
    for index, user_id in enumerate(user_ids):
        trigger = f"user{user_id[:8]}"
        model = f"{OWNER}/user-{user_id[:8]}-selfie-lora"
        gateway.create_model(model)
        trainings = []
        for attempt in range(2):
            content = selfie_zip(
                PHOTOS, person=0, first_index=index * 10 + attempt * 5, long_side=400
            )
            url = f"{base_url}/_blob/training/{user_id}/{attempt}.zip"
            httpx.put(
                url, content=content, headers={"content-type": "application/zip"}
            ).raise_for_status()
            zip_urls.append(url)
            trainings.append(train(gateway, model, url, trigger))
        current = trainings[0] if index == 0 else trainings[-1]
        at = NOW - timedelta(minutes=index)
        user_rows.append(
            {
                "id": user_id,
                "email": f"jobs{index}@example.test",
                "plan": "sselfie-studio",
                "created_at": at - timedelta(days=9),
                "updated_at": at,
            }
        )
        model_rows.append(
            {
                "user_id": user_id,
                "replicate_model_id": model,
                "replicate_version_id": current.version_hash,
                "trigger_word": trigger,
                "training_status": "completed",
                "training_id": trainings[-1].id,
                "lora_weights_url": current.output_weights,
                "lora_scale": 1.0,
                "training_progress": 100,
                "model_type": "flux-dev-lora",
                "created_at": at - timedelta(days=9),
                "updated_at": at,
                "started_at": at - timedelta(minutes=20),
                "completed_at": at,
            }
        )
    with engine.begin() as conn:
        conn.execute(users.insert(), user_rows)
        conn.execute(user_models.insert(), model_rows)
    return JobsWorld(user_ids, user_ids[0], tuple(zip_urls))
