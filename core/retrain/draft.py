"""A draft retrain's photos: the previous training's, loaded once with the facts the
ledger already measured for them, and every other photo measured once (dlib; a worker's
job, never a page's), then the whole draft judged.

``check_draft`` is safe to run twice or at once: loading the previous photos is guarded
by the draft's row lock, and each photo's facts are written only where none are yet.
Verdicts are re-judged over the photos the admin keeps (the near-duplicate and same-person
checks depend on the set) whenever the set changes (``rejudge``), which is pure and cheap.
"""

from __future__ import annotations

import hashlib
import io
import statistics
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from core.drift.facts import DatasetFacts
from core.errors import DashboardError
from core.gateway.gateway import ReplicateGateway
from core.imaging import ZipPhoto, read_zip_photos
from core.imaging.faces import FaceReader
from core.ledger.datasets import MAX_ZIP_BYTES, load_dataset_facts, read_dataset, store_reading
from core.ledger.sources import download_address
from core.ledger.tables import training_photos
from core.redaction import stored_url
from core.retrain.checks import (
    GateResult,
    PhotoFacts,
    PhotoJudgement,
    gate,
    judge_for_retrain,
    unreadable,
)
from core.retrain.measure import PhotoMeasurer
from core.retrain.plan import MAX_PHOTO_BYTES, MAX_PHOTOS
from core.retrain.tables import retrain_photos, retrains


def load_previous(
    engine: Engine,
    gateway: ReplicateGateway,
    retrain_id: int,
    face_reader: Callable[[], FaceReader] | None = None,
) -> str | None:
    """Add every earlier training's photos to the draft (once), named ``v1/<member>``…;
    what could not be read, if anything (the rest still loads).

    Each photo comes with the facts and thumbnail ``ops.training_photos`` keeps for it
    (the scan or a comparison measured it), so the draft does not measure it again. With
    ``face_reader``, a ZIP nobody has measured yet is read here the way the scan reads it
    (``core.ledger.datasets``), and kept for the scan and comparisons too: each photo is
    measured once, whoever reads it first."""
    with engine.connect() as conn:
        row = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
        loaded = _previous_count(conn, retrain_id)
    if row.status != "draft" or loaded or not row.source_zips:
        return None
    found: list[tuple[str, bytes, Measured | None]] = []
    problems = []
    for source in row.source_zips:
        url = str(source["url"])
        try:
            # Kept without its signature: the full URL comes from the training's record.
            body = gateway.download(download_address(engine, gateway, url), max_bytes=MAX_ZIP_BYTES)
            members = _photo_members(body)
        except DashboardError as exc:
            problems.append(f"{source['label']}'s photos could not be read: {exc}")
            continue
        measured = _measured_members(engine, url, body, face_reader)
        found += [
            (f"{source['label']}/{name}", content, measured.get(name)) for name, content in members
        ]
    with engine.begin() as conn:
        locked = conn.execute(
            select(retrains.c.status).where(retrains.c.id == retrain_id).with_for_update()
        ).scalar_one()
        if locked != "draft" or _previous_count(conn, retrain_id):
            return None
        first = int(
            conn.execute(
                select(func.coalesce(func.max(retrain_photos.c.position) + 1, 0)).where(
                    retrain_photos.c.retrain_id == retrain_id
                )
            ).scalar_one()
        )
        room = max(0, MAX_PHOTOS - first)
        if len(found) > room:
            problems.append(
                f"Only the newest {room} of the {len(found)} earlier photos were added (a "
                f"retrain takes at most {MAX_PHOTOS})."
            )
            found = found[-room:] if room else []
        if found:
            conn.execute(
                retrain_photos.insert(),
                [
                    {
                        "retrain_id": retrain_id,
                        "position": first + index,
                        "name": name,
                        "source": "previous",
                        "content": content,
                        "facts": None if known is None else _renamed(known.facts, name),
                        "thumbnail": None if known is None else known.thumbnail,
                    }
                    for index, (name, content, known) in enumerate(found)
                ],
            )
    return " ".join(problems) or None


@dataclass(frozen=True)
class Measured:
    """A ZIP member's facts and thumbnail as ``ops.training_photos`` keeps them."""

    facts: dict[str, Any]
    thumbnail: bytes | None


def _measured_members(
    engine: Engine, url: str, body: bytes, face_reader: Callable[[], FaceReader] | None
) -> dict[str, Measured]:
    """The facts kept for the ZIP at ``url``'s photos, by member; when none are and a
    reader is given, the ZIP is read now (no connection held while dlib runs) and kept."""
    with engine.connect() as conn:
        kept = _kept_facts(conn, url)
    if kept or face_reader is None:
        return kept
    reading = read_dataset(body, face_reader())
    if reading.unreadable:
        return {}
    with engine.begin() as conn:
        store_reading(conn, url, hashlib.sha256(body).hexdigest(), reading)
        return _kept_facts(conn, url)


def _kept_facts(conn: Connection, url: str) -> dict[str, Measured]:
    rows = conn.execute(
        select(
            training_photos.c.member, training_photos.c.facts, training_photos.c.thumbnail
        ).where(training_photos.c.zip_url == stored_url(url), training_photos.c.facts.is_not(None))
    )
    return {row.member: Measured(dict(row.facts), row.thumbnail) for row in rows}


def _renamed(facts: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The member's facts under the draft's name for the photo (``v1/<member>``)."""
    return {**facts, "name": name}


def _previous_count(conn: Connection, retrain_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(retrain_photos)
            .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.source == "previous")
        ).scalar_one()
    )


def _photo_members(body: bytes) -> list[tuple[str, bytes]]:
    """The ZIP's members that decode as photos, as their own bytes (the archive's limits
    are checked first, by ``read_zip_photos``)."""
    usable = []
    for member in read_zip_photos(body):
        if isinstance(member, ZipPhoto):
            usable.append(member.name)
            member.image.close()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [
            (name, archive.read(name))
            for name in usable
            if archive.getinfo(name).file_size <= MAX_PHOTO_BYTES
        ]


def measure_draft(engine: Engine, measurer: PhotoMeasurer, retrain_id: int) -> int:
    """Measure every photo of the draft not measured yet, on the measurer's processes (each
    photo's bytes read only as it is about to be measured, no connection held while dlib
    runs, each result written as it is ready); how many were measured."""
    with engine.connect() as conn:
        waiting = (
            conn.execute(
                select(retrain_photos.c.position)
                .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.facts.is_(None))
                .order_by(retrain_photos.c.position)
            )
            .scalars()
            .all()
        )

    names: dict[int, str] = {}

    def files() -> Iterator[tuple[int, str, bytes]]:
        for position in waiting:
            with engine.connect() as conn:
                photo = conn.execute(
                    select(retrain_photos.c.name, retrain_photos.c.content).where(
                        retrain_photos.c.retrain_id == retrain_id,
                        retrain_photos.c.position == position,
                    )
                ).one()
            names[position] = photo.name
            yield position, photo.name, bytes(photo.content)

    for position, measured in measurer.measure(files()):
        values: dict[str, Any]
        if measured.facts is None:
            reason = measured.unreadable or "cannot be read"
            values = {
                "facts": {"unreadable": reason},
                "verdict": "reject",
                "reasons": list(unreadable(names[position], reason).reasons),
                "kept": False,
            }
        else:
            values = {"facts": measured.facts.to_dict(), "thumbnail": measured.thumbnail}
        with engine.begin() as conn:
            conn.execute(
                update(retrain_photos)
                .where(
                    retrain_photos.c.retrain_id == retrain_id,
                    retrain_photos.c.position == position,
                    retrain_photos.c.facts.is_(None),
                )
                .values(**values)
            )
    return len(waiting)


def rejudge(conn: Connection, retrain_id: int) -> tuple[PhotoJudgement, ...]:
    """Judge the kept, measured photos together and store each one's verdict; a photo the
    checks reject is dropped (it cannot be submitted; the admin sees why), and the rest are
    judged again without it (near-duplicates and the usual face depend on the set). The
    kept photos' judgements."""
    judgements: tuple[PhotoJudgement, ...] = ()
    for _ in range(MAX_PHOTOS):
        rows = conn.execute(
            select(retrain_photos.c.position, retrain_photos.c.facts)
            .where(
                retrain_photos.c.retrain_id == retrain_id,
                retrain_photos.c.kept,
                retrain_photos.c.facts.is_not(None),
            )
            .order_by(retrain_photos.c.position)
        ).all()
        measured = [(row.position, row.facts) for row in rows if "unreadable" not in row.facts]
        judgements = judge_for_retrain([PhotoFacts.from_dict(facts) for _, facts in measured])
        for (position, _), judgement in zip(measured, judgements, strict=True):
            conn.execute(
                update(retrain_photos)
                .where(
                    retrain_photos.c.retrain_id == retrain_id,
                    retrain_photos.c.position == position,
                )
                .values(
                    verdict=judgement.verdict,
                    reasons=list(judgement.reasons),
                    kept=judgement.verdict != "reject",
                )
            )
        if all(judgement.verdict != "reject" for judgement in judgements):
            break
    return judgements


def draft_gate(conn: Connection, retrain_id: int) -> GateResult:
    """The dataset gate over the kept photos, against the previous training's dataset (its
    cached facts, or else the previous photos loaded into this draft)."""
    header = conn.execute(select(retrains).where(retrains.c.id == retrain_id)).one()
    rows = conn.execute(
        select(
            retrain_photos.c.name,
            retrain_photos.c.facts,
            retrain_photos.c.source,
            retrain_photos.c.kept,
        )
        .where(retrain_photos.c.retrain_id == retrain_id, retrain_photos.c.facts.is_not(None))
        .order_by(retrain_photos.c.position)
    ).all()
    kept = [row for row in rows if row.kept]
    readable = [PhotoFacts.from_dict(row.facts) for row in kept if "unreadable" not in row.facts]
    judgements = list(judge_for_retrain(readable))
    judgements += [
        unreadable(row.name, str(row.facts["unreadable"]))
        for row in kept
        if "unreadable" in row.facts
    ]
    previous = _previous_dataset(conn, header.previous_zip_url, header.source_zips, rows)
    return gate(judgements, readable, previous)


def _previous_dataset(
    conn: Connection, zip_url: str | None, sources: Sequence[Any], rows: Sequence[Any]
) -> DatasetFacts | None:
    if not zip_url:
        return None
    cached = load_dataset_facts(conn, [zip_url]).get(zip_url)
    if cached is not None and cached.error is None:
        return cached
    # The draft holds every earlier training's photos; only that training's are "before".
    label = next((str(source["label"]) for source in sources if source.get("url") == zip_url), None)
    previous = [
        PhotoFacts.from_dict(row.facts)
        for row in rows
        if row.source == "previous"
        and label is not None
        and str(row.name).startswith(f"{label}/")
        and "unreadable" not in row.facts
    ]
    if not previous:
        return None
    judged = judge_for_retrain(previous)
    return DatasetFacts(
        image_count=len(previous),
        median_short_side=round(statistics.median(facts.short_side for facts in previous)),
        photos_failing=sum(1 for judgement in judged if judgement.verdict == "reject"),
    )


def note_problem(conn: Connection, retrain_id: int, problem: str) -> None:
    """Keep a problem the checks met (e.g. the previous photos could not be read)."""
    conn.execute(update(retrains).where(retrains.c.id == retrain_id).values(error=problem))
