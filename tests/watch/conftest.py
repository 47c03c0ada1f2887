"""Watch fixtures: the ledger's (the app's rows written literally, trainings started on
the sandbox the way the app starts them), shared rather than copied."""

from __future__ import annotations

from tests.ledger.conftest import app_world, blobs

__all__ = ["app_world", "blobs"]
