"""The retrain tests' world: the job tests' own (a database of each test's own, a small
world of users trained on the session's sandbox, real worker processes), and the retrain
checks' measuring processes, started once for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.retrain.measure import PhotoMeasurer
from tests.jobs.conftest import jobs_sandbox, jobs_template, workers, world
from tests.retrain.drafts import MeasuredUpload, measure_uploads

__all__ = [
    "jobs_sandbox",
    "jobs_template",
    "photo_measurer",
    "uploads",
    "workers",
    "world",
]


@pytest.fixture(scope="session")
def photo_measurer() -> Iterator[PhotoMeasurer]:
    with PhotoMeasurer(2) as measurer:
        yield measurer


@pytest.fixture(scope="session")
def uploads(photo_measurer: PhotoMeasurer) -> tuple[MeasuredUpload, ...]:
    """The twelve uploads every test draft gets, measured once for the session."""
    return measure_uploads(photo_measurer)
