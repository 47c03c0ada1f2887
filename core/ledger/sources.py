"""Where a training ZIP is downloaded from, when schema ops keeps its URL without secrets.

The ledger keeps a training's ``input_images`` as ``core.redaction.stored_url`` gives it:
a presigned URL (S3, Blob) without its signature, a ``user:password@`` without them. That
stored URL is the key of the photos read from it (``ops.dataset_facts``,
``ops.training_photos``), of the scan's rows and of the jobs reading it; it no longer
downloads. ``download_address`` takes the full URL from its source at the time of use:
Replicate's record of a training whose ledger row holds that stored URL, read again by id
(newest first). A URL nothing was taken out of (Replicate's own, a public blob) is its own
address, with no call at all.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select

from core.errors import DashboardError, ReplicateError
from core.gateway.gateway import ReplicateGateway
from core.ledger.tables import trainings
from core.redaction import lost_secrets, redacted_url, stored_url

# Trainings asked for the full URL, newest first: the same ZIP is rarely trained on more.
MAX_ASKED = 3


class AddressUnknown(ReplicateError):
    """The full URL of a stored ZIP URL could not be found at its source (for now)."""


def download_address(store: Engine | Connection, gateway: ReplicateGateway, url: str) -> str:
    """The URL to download the ZIP stored as ``url`` from (see the module docstring);
    ``AddressUnknown`` when no training in the ledger gives it back (tried again later)."""
    if not lost_secrets(url):
        return url
    key = stored_url(url)
    query = (
        select(trainings.c.id)
        .where(trainings.c.input["input_images"].astext == key)
        .order_by(trainings.c.created_at.desc().nulls_last(), trainings.c.id)
        .limit(MAX_ASKED)
    )
    if isinstance(store, Engine):
        with store.connect() as conn:
            ids = list(conn.execute(query).scalars())
    else:
        ids = list(store.execute(query).scalars())
    problems = []
    for training_id in ids:
        try:
            given = gateway.get_training(training_id).input.get("input_images")
        except DashboardError as exc:
            problems.append(f"{training_id}: {exc}")
            continue
        if isinstance(given, str) and stored_url(given.strip()) == key:
            return given.strip()
    why = "; ".join(problems) or "no training on Replicate gives it any more"
    raise AddressUnknown(
        f"The signed address of {redacted_url(url)} is not kept by the console, and it could "
        f"not be read again from the training that used it ({why}); the next scan tries again."
    )
