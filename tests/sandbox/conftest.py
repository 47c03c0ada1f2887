"""Fixtures for tests about one version among others: two models, one trained version each
(two columns of a comparison), trained from the same small ZIP at the instant pace."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.gateway.gateway import ReplicateGateway
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from tests.photos import selfie_zip
from tests.waits import until_ended

COLUMN_A, COLUMN_B = "sandrasocial/column-a", "sandrasocial/column-b"
TRIGGER = "usercol"


@dataclass(frozen=True)
class Columns:
    a: str  # the version id of COLUMN_A's only version
    b: str  # ... and of COLUMN_B's
    zip_url: str  # the training photos both were trained on


@pytest.fixture(scope="session")
def small_selfie_zip() -> bytes:
    """Built once: making the photos takes about half a second."""
    return selfie_zip(5, long_side=300)


def train_version(gateway: ReplicateGateway, destination: str, zip_url: str) -> str:
    training = gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        destination,
        {"input_images": zip_url, "trigger_word": TRIGGER},
    )
    training = until_ended(
        lambda: gateway.get_training(training.id), what="the instant sandbox's training"
    )
    assert training.version_hash is not None, training.error
    return training.version_hash


@pytest.fixture
def columns(gateway: ReplicateGateway, small_selfie_zip: bytes) -> Columns:
    zip_url = gateway.upload_file(
        small_selfie_zip, filename="images.zip", content_type="application/zip"
    ).url
    versions = []
    for model in (COLUMN_A, COLUMN_B):
        gateway.create_model(model)
        versions.append(train_version(gateway, model, zip_url))
    return Columns(versions[0], versions[1], zip_url)
