"""Finding a paid create whose answer was lost, before anything is sent again.

Replicate has no idempotency key: when a training or prediction create was sent and its
answer never came (a timeout, a 502 after the fact, a worker killed mid-call), the only
way to know whether it happened is to list what the account created since the claim and
look for it. Compare and retrain both search this way, here.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from datetime import datetime, timedelta
from typing import Any

from core.gateway.gateway import ReplicateGateway
from core.gateway.values import Prediction, Training

# Creates this long before the claim still count: the database's clock and Replicate's
# differ.
CLOCK_SLACK = timedelta(minutes=2)


def search_since(claimed_at: datetime) -> datetime:
    """Where a search for a create claimed at ``claimed_at`` starts."""
    return claimed_at - CLOCK_SLACK


def find_lost_training(
    gateway: ReplicateGateway, *, claimed_at: datetime, trainer_version: str, zip_url: str
) -> Training | None:
    """The training created since the claim on ``trainer_version`` with the ZIP at
    ``zip_url`` (unique to one retrain), or None. ``ReplicateError`` when the list
    cannot be read: then nobody knows, and nothing may be resent."""
    for training in gateway.list_trainings(created_after=search_since(claimed_at)):
        if (
            training.trainer_version == trainer_version
            and training.input.get("input_images") == zip_url
        ):
            return training
    return None


def find_lost_predictions(
    gateway: ReplicateGateway,
    *,
    claimed_at: datetime,
    version_id: str,
    prediction_input: Mapping[str, Any],
    taken: Container[str] = (),
) -> list[Prediction]:
    """The predictions created since the claim on ``version_id`` with the same seed and
    prompt, newest first, that ``taken`` does not hold (two images of one comparison may
    send the very same input: column A and its repeat). ``ReplicateError`` when the list
    cannot be read."""
    return [
        prediction
        for prediction in gateway.list_predictions(created_after=search_since(claimed_at))
        if prediction.version == version_id
        and prediction.input.get("seed") == prediction_input.get("seed")
        and prediction.input.get("prompt") == prediction_input.get("prompt")
        and prediction.id not in taken
    ]
