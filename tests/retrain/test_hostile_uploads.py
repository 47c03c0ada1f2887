"""The hostile corpus through the wizard's uploads: every file gets a verdict with its
reason (unreadable ones rejected as the dataset facts skip them), nothing crashes, and the
gate and the ZIP still work on what could be read."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import DataRejected
from core.retrain.draft import draft_gate, measure_draft, rejudge
from core.retrain.measure import PhotoMeasurer
from core.retrain.package import package_photos
from core.retrain.plan import MAX_PHOTO_BYTES, MAX_PHOTOS
from core.retrain.submit import NewPhoto, add_photos
from core.retrain.tables import retrain_photos
from tests.imaging.corpus import MEMBERS, Skipped
from tests.jobs.conftest import World
from tests.retrain.drafts import ADMINS, MeasuredUpload, open_checked_draft

# Pillow warns of a broken EXIF block and decodes the photo; the measuring processes run
# without pytest's warnings-as-errors, so this process must not turn it into one either.
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),
]

# Skips a ZIP gives for a member's name (an upload's name is only a label: its bytes are
# judged, so "../escape.jpg" holding a good selfie is a good photo here).
NAME_RULES = ("path with", "absolute path", "directory", "macOS", "hidden file")


def test_every_hostile_upload_gets_a_verdict_and_nothing_crashes(
    world: World, photo_measurer: PhotoMeasurer, uploads: tuple[MeasuredUpload, ...]
) -> None:
    files = [(member, member.payload()) for member in MEMBERS]
    too_big = [member for member, content in files if len(content) > MAX_PHOTO_BYTES]
    fitting = [(member, content) for member, content in files if len(content) <= MAX_PHOTO_BYTES]
    room = MAX_PHOTOS - 12  # each draft starts with 12 good uploads
    checked = 0
    for first in range(0, len(fitting), room):
        chosen = fitting[first : first + room]
        retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
        with world.engine.begin() as conn:
            add_photos(
                conn,
                ADMINS[0],
                retrain_id,
                [NewPhoto(member.name, "upload", content) for member, content in chosen],
            )
        assert measure_draft(world.engine, photo_measurer, retrain_id) == len(chosen)
        with world.engine.begin() as conn:
            rejudge(conn, retrain_id)
            result = draft_gate(conn, retrain_id)
            rows = {
                row.position: row
                for row in conn.execute(
                    select(retrain_photos).where(retrain_photos.c.retrain_id == retrain_id)
                )
            }
        for position, (member, _) in enumerate(chosen, start=12):  # after the 12 selfies
            row = rows[position]
            assert row.verdict in ("ok", "warn", "reject"), member.name
            if isinstance(member.verdict, Skipped) and not member.verdict.reason.startswith(
                NAME_RULES
            ):
                assert (row.verdict, row.kept) == ("reject", False), (member.name, row.reasons)
                assert row.reasons[0].startswith("cannot be read: "), member.name
                assert member.verdict.reason in row.reasons[0], (member.name, row.reasons)
            elif row.verdict == "reject":
                assert row.reasons, member.name
            checked += 1
        assert result.figures["count"] >= 12  # the gate judged the kept photos
        kept = [(row.name, bytes(row.content)) for row in rows.values() if row.kept]
        assert package_photos(kept).names  # the ZIP builds from every kept photo
    assert checked == len(fitting) > 20
    if too_big:  # refused with the size, before anything is stored
        retrain_id = open_checked_draft(world, world.users.stale_user, uploads)
        with world.engine.begin() as conn, pytest.raises(DataRejected, match="MB"):
            add_photos(
                conn,
                ADMINS[0],
                retrain_id,
                [NewPhoto(too_big[0].name, "upload", too_big[0].payload())],
            )
