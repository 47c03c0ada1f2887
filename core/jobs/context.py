"""What a job's steps need from the running process: databases, Replicate, faces.

Below every domain (scans, comparisons, retrains, the ledger), so that each one's tasks
can take them from the worker without importing another domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from core.faces import FaceReader
from core.gateway.gateway import ReplicateGateway


@dataclass(frozen=True)
class JobServices:
    """Shared by every job a worker runs (engines, gateway and readers are thread-safe)."""

    app_engine: Engine  # the app's tables: read only
    ops_engine: Engine  # schema ops: the scan's rows, the ledger, the queue
    gateway: ReplicateGateway
    face_reader: Callable[[], FaceReader]  # dlib's models, loaded on first call
    heartbeat_seconds: float = 10.0
