"""The training ledger: Replicate's trainings kept in schema ``ops``, attached to users,
with the facts of each training's photos (see ``sync`` and ``datasets``)."""

from core.ledger.attach import ATTACH_RULES, attach, upload_path_user
from core.ledger.datasets import (
    DatasetReading,
    DatasetScan,
    ensure_dataset_facts,
    load_dataset_facts,
    read_dataset,
)
from core.ledger.photo_facts import (
    PHOTO_CHECKS,
    PhotoMeasure,
    facts_from_measures,
    facts_from_photos,
    judge_photos,
)
from core.ledger.sync import SyncReport, ledger_for_user, sync_ledger, sync_trainings

__all__ = [
    "ATTACH_RULES",
    "PHOTO_CHECKS",
    "DatasetReading",
    "DatasetScan",
    "PhotoMeasure",
    "SyncReport",
    "attach",
    "ensure_dataset_facts",
    "facts_from_measures",
    "facts_from_photos",
    "judge_photos",
    "ledger_for_user",
    "load_dataset_facts",
    "read_dataset",
    "sync_ledger",
    "sync_trainings",
    "upload_path_user",
]
