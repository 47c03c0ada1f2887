"""Watch fixtures: the ledger's (the app's rows written literally, trainings started on
the sandbox the way the app starts them), the job tests' world and real workers (a
database of each test's own, users trained on a sandbox of the world's own), and a
loopback webhook for the alerts; shared rather than copied."""

from __future__ import annotations

from tests.jobs.conftest import jobs_sandbox, jobs_template, workers, world
from tests.ledger.conftest import app_world, blobs
from tests.watch.receiver import receiver

__all__ = [
    "app_world",
    "blobs",
    "jobs_sandbox",
    "jobs_template",
    "receiver",
    "workers",
    "world",
]
