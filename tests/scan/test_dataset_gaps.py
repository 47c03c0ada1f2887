"""Which ZIPs a user's checks need, and the note a user gets when some could not be used:
read from a real ledger and facts cache (inside the rolled-back ``conn``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert

from core.ledger.datasets import FACTS_METHOD
from core.ledger.sync import version_owner
from core.ledger.tables import dataset_facts, trainings
from core.scan.datasets import RECHECK_HINT, dataset_gaps, needed_by_user

MODEL = "sandrasocial/user-gap00000-selfie-lora"
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _training(conn: Connection, user_id: str, number: int, *, model: str = MODEL) -> str:
    url = f"https://blob.example/{user_id}/{number}.zip"
    version = f"{number:02x}" * 32
    conn.execute(
        insert(trainings).values(
            id=f"{user_id}-t{number}",
            user_id=user_id,
            attached_by="trigger_word",
            trainer_model="replicate/fast-flux-trainer",
            trainer_version="f" * 64,
            destination=model,
            status="succeeded",
            input={"input_images": url, "trigger_word": "usergap"},
            output_version=f"{model}:{version}",
            created_at=T0 + timedelta(days=number),
        )
    )
    return url


def _facts(conn: Connection, url: str, *, error: str | None = None) -> None:
    facts = {"method": FACTS_METHOD, "image_count": 12, "error": error}
    conn.execute(insert(dataset_facts).values(url=url, content_sha256=None, facts=facts))


def test_a_rejected_zip_is_a_note_never_a_silent_healthy(conn: Connection) -> None:
    first, second = _training(conn, "gap-a", 1), _training(conn, "gap-a", 2)
    _facts(conn, first)
    _facts(conn, second, error="the ZIP is larger than 100 MB")
    gaps = dataset_gaps(conn, {"gap-a": None}, failed={})
    assert set(gaps) == {"gap-a"}
    assert "could not be used" in gaps["gap-a"] and "larger than 100 MB" in gaps["gap-a"]
    assert RECHECK_HINT in gaps["gap-a"]
    # A failure of this scan (tried again next time) is said as such, and wins.
    failed = dataset_gaps(conn, {"gap-a": None}, failed={first: "HTTP 503 after retries"})
    assert "the next scan tries again" in failed["gap-a"] and "503" in failed["gap-a"]
    _facts(conn, _training(conn, "gap-b", 1))
    assert dataset_gaps(conn, {"gap-b": None}, failed={}) == {}


def test_the_stored_version_s_training_is_needed_and_its_owner_is_found(
    conn: Connection,
) -> None:
    urls = [_training(conn, "gap-c", number) for number in (1, 2, 3, 4)]
    stored = f"{MODEL}:{'01' * 32}"
    assert needed_by_user(conn, {"gap-c": stored}) == {"gap-c": [urls[0], urls[2], urls[3]]}
    owner = version_owner(conn, "03" * 32)
    assert owner is not None and (owner.user_id, owner.training_id) == ("gap-c", "gap-c-t3")
    assert owner.destination == MODEL
    assert version_owner(conn, "ee" * 32) is None
