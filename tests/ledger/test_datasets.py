"""Dataset facts from real training ZIPs (tests.photos' astronaut selfies), read with dlib,
and their cache in ops.dataset_facts, fed by downloads from the real sandbox."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from sqlalchemy import Connection, select

from core.compare.photos import photos_of, read_zip_body, reference_of
from core.drift.facts import DatasetFacts
from core.gateway.gateway import ReplicateGateway
from core.imaging.faces import SAME_PERSON_DISTANCE, FaceReader, distance
from core.imaging.measure import THUMBNAIL_SIDE
from core.ledger import (
    DatasetReading,
    ensure_dataset_facts,
    ledger_for_user,
    load_dataset_facts,
    read_dataset,
    sync_trainings,
)
from core.ledger.datasets import FACTS_METHOD, store_reading, zip_trainings
from core.ledger.tables import dataset_facts
from tests.ledger.conftest import AppWorld
from tests.photos import face_photo, selfie_zip, zip_of


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def coffee_png() -> bytes:
    """scikit-image's cup of coffee: a photo with no face in it."""
    out = io.BytesIO()
    coffee = skdata.coffee()  # type: ignore[no-untyped-call]  # skimage.data is unannotated
    Image.fromarray(coffee).save(out, format="PNG")
    return out.getvalue()


def another_person() -> bytes:
    """The first face of scikit-image's LFW subset (25x25 gray) enlarged to 600 px: blurry,
    but dlib finds the face, and it is not the astronaut."""
    lfw = skdata.lfw_subset()  # type: ignore[no-untyped-call]  # skimage.data is unannotated
    face = (lfw[0] * 255).astype(np.uint8)
    return jpeg(Image.fromarray(face).resize((600, 600), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def readings(face_reader: FaceReader) -> Mapping[str, tuple[DatasetReading, float]]:
    """Each dataset read once for the module, with the seconds it took."""
    zips = {
        "good": selfie_zip(10),
        "blurry": selfie_zip(5, blur=4.0),
        "squeezed": selfie_zip(10, long_side=600, jpeg_quality=55),
        "mixed": zip_of(
            [face_photo(index) for index in range(6)]
            + [another_person(), jpeg(Image.open(io.BytesIO(coffee_png())))]
        ),
    }
    timed = {}
    for name, content in zips.items():
        started = time.perf_counter()
        timed[name] = (read_dataset(content, face_reader), time.perf_counter() - started)
    return timed


def facts(readings: Mapping[str, tuple[DatasetReading, float]], name: str) -> DatasetFacts:
    return readings[name][0].facts


def test_a_good_dataset(readings: Mapping[str, tuple[DatasetReading, float]]) -> None:
    good = facts(readings, "good")
    assert good.readable and good.image_count == 10
    assert good.median_short_side is not None and good.median_short_side >= 1024
    assert good.jpeg_quality == 92
    assert good.median_sharpness is not None and good.median_sharpness > 150
    assert good.photos_failing == 0
    assert all(count == 0 for count in good.failing_by_reason.values())


def test_five_blurry_photos(readings: Mapping[str, tuple[DatasetReading, float]]) -> None:
    blurry = facts(readings, "blurry")
    assert blurry.image_count == 5
    assert blurry.photos_failing == 5
    assert dict(blurry.failing_by_reason) == {
        "blurry": 5,
        "no_face": 0,
        "several_faces": 0,
        "other_person": 0,
    }


def test_squeezed_photos(readings: Mapping[str, tuple[DatasetReading, float]]) -> None:
    squeezed, good = facts(readings, "squeezed"), facts(readings, "good")
    assert squeezed.image_count == 10
    assert squeezed.median_short_side is not None and squeezed.median_short_side <= 600
    assert squeezed.jpeg_quality is not None and abs(squeezed.jpeg_quality - 55) <= 5
    # Squeezing shrinks and compresses, it does not blur: sharpness (measured at a fixed
    # 512 px) stays far above the blurry set's; resolution and quality tell it apart.
    assert squeezed.photos_failing == 0
    assert good.median_short_side is not None
    assert squeezed.median_short_side < 0.75 * good.median_short_side


def test_sharpness_orders_the_datasets(
    readings: Mapping[str, tuple[DatasetReading, float]],
) -> None:
    sharpness = {
        name: facts(readings, name).median_sharpness or 0.0
        for name in ("good", "blurry", "squeezed")
    }
    assert sharpness["blurry"] < 50 < 150 < min(sharpness["good"], sharpness["squeezed"])


def test_a_photo_without_a_face_and_a_photo_of_someone_else(
    readings: Mapping[str, tuple[DatasetReading, float]],
    face_reader: FaceReader,
) -> None:
    stranger = face_reader.read(another_person())
    astronaut = face_reader.read(face_photo(0))
    assert len(stranger) == 1 and len(astronaut) == 1
    assert distance(stranger[0], astronaut[0]) > SAME_PERSON_DISTANCE

    reading, _ = readings["mixed"]
    mixed = reading.facts
    assert mixed.image_count == 8
    assert mixed.failing_by_reason["no_face"] == 1
    assert mixed.failing_by_reason["other_person"] == 1
    assert mixed.failing_by_reason["several_faces"] == 0
    verdicts = {verdict.measure.name: verdict for verdict in reading.photos}
    assert "other_person" in verdicts["image_06.jpg"].failing
    assert verdicts["image_07.jpg"].failing == ("no_face",)
    assert mixed.photos_failing == 2
    assert all(verdicts[f"image_{n:02d}.jpg"].failing == () for n in range(6))


def test_non_images_are_skipped_with_reasons_and_not_counted(face_reader: FaceReader) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("notes.txt", b"my best selfies")
        out.writestr("../escape.jpg", face_photo(1, long_side=400))
        for index in range(3):
            out.writestr(f"ok{index}.jpg", face_photo(index, long_side=400))
    reading = read_dataset(archive.getvalue(), face_reader)
    assert reading.facts.image_count == 3
    assert {(m.name, m.reason) for m in reading.skipped} == {
        ("notes.txt", "not an image"),
        ("../escape.jpg", "path with '..' components"),
    }
    assert reading.to_json()["skipped"] == [
        ["notes.txt", "not an image"],
        ["../escape.jpg", "path with '..' components"],
    ]


@pytest.mark.parametrize("content", [b"not a zip", zip_of([]), b""])
def test_unusable_zips_become_facts_with_an_error(content: bytes, face_reader: FaceReader) -> None:
    reading = read_dataset(content, face_reader)
    assert reading.facts.error is not None and reading.facts.image_count is None


# -- the cache -------------------------------------------------------------------------------


def blob_downloads(control: httpx.Client) -> int:
    counts: dict[str, int] = control.get("/stats").json()["counts"]
    return sum(n for key, n in counts.items() if key.startswith("GET /_blob/"))


def stored(conn: Connection) -> dict[str, Any]:
    return {row.url: row for row in conn.execute(select(dataset_facts))}


def test_facts_are_computed_once_and_cached(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    control: httpx.Client,
) -> None:
    app_world.add_user("anna0001")
    url = app_world.put_zip("anna0001", selfie_zip(4, long_side=500))
    training = app_world.train("anna0001", zip_url=url)

    first = ensure_dataset_facts(conn, gateway, face_reader, [training, training])
    assert (first.requested, first.already_cached, first.computed) == (1, 0, (url,))
    assert blob_downloads(control) == 1
    row = stored(conn)[url]
    assert row.content_sha256 and row.facts["image_count"] == 4
    assert row.facts["method"] == FACTS_METHOD
    assert len(row.facts["photos"]) == 4

    second = ensure_dataset_facts(conn, gateway, face_reader, [training])
    assert (second.already_cached, second.computed) == (1, ())
    assert blob_downloads(control) == 1  # not downloaded again

    sync_trainings(conn, gateway)
    (record,) = ledger_for_user(conn, "anna0001")
    assert record.dataset is not None and record.dataset.image_count == 4
    assert record.dataset == load_dataset_facts(conn, [url])[url]


def test_a_scans_reading_keeps_each_photo_for_comparisons_and_the_user_page(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
) -> None:
    """One reading, two uses: what the scan measured is the comparisons' identity
    reference and the User page's photo grid, with no second dlib pass."""
    content = zip_of([face_photo(index, long_side=500) for index in range(3)] + [b"notes"])
    url = app_world.put_zip("anna0001", content)
    training = app_world.train("anna0001", zip_url=url)
    ensure_dataset_facts(conn, gateway, face_reader, [training])
    photos = photos_of(conn, url)
    assert [photo.member for photo in photos] == [f"image_{i:02d}.jpg" for i in range(4)]
    read, skipped = photos[:3], photos[3]
    assert all(photo.has_face and photo.thumbnail and not photo.skipped for photo in read)
    assert max(Image.open(io.BytesIO(read[0].thumbnail or b"")).size) == THUMBNAIL_SIDE
    assert skipped.skipped and skipped.thumbnail is None and not skipped.has_face
    reference, count = reference_of(conn, [url])
    assert count == 4 and reference is not None and len(reference.names) == 3
    # The scan's facts say the same of the photos as the rows do.
    stored_photos = stored(conn)[url].facts["photos"]
    assert [photo["failing"] for photo in stored_photos] == [list(p.failing) for p in read]


def test_a_comparisons_reading_keeps_the_dataset_facts_for_the_scan(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    control: httpx.Client,
) -> None:
    content = selfie_zip(3, long_side=400)
    url = app_world.put_zip("anna0001", content)
    training = app_world.train("anna0001", zip_url=url)
    store_reading(
        conn, url, hashlib.sha256(content).hexdigest(), read_zip_body(content, face_reader)
    )
    before = blob_downloads(control)
    scan = ensure_dataset_facts(conn, gateway, face_reader, [training])
    assert (scan.already_cached, scan.computed) == (1, ())
    assert blob_downloads(control) == before  # nothing downloaded, nothing measured
    assert load_dataset_facts(conn, [url])[url].image_count == 3


def test_same_content_under_another_url_is_not_measured_again(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
) -> None:
    content = selfie_zip(3, long_side=400)
    first = app_world.train("anna0001", zip_url=app_world.put_zip("anna0001", content))
    again = app_world.train("anna0001", zip_url=app_world.put_zip("anna0001", content))
    scan = ensure_dataset_facts(conn, gateway, face_reader, [first, again], max_workers=1)
    assert len(scan.computed) == 1 and len(scan.reused) == 1
    rows = stored(conn)
    assert len({row.content_sha256 for row in rows.values()}) == 1
    assert len({repr(row.facts) for row in rows.values()}) == 1


def test_recheck_recomputes_only_changed_content(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    blobs: httpx.Client,
) -> None:
    url = app_world.put_zip("anna0001", selfie_zip(3, long_side=400))
    training = app_world.train("anna0001", zip_url=url)
    ensure_dataset_facts(conn, gateway, face_reader, [training])
    unchanged = ensure_dataset_facts(conn, gateway, face_reader, [training], recheck=True)
    assert unchanged.unchanged == (url,) and unchanged.computed == ()

    path = url.split("/_blob/", 1)[1]
    blobs.put(f"/_blob/{path}", content=selfie_zip(2, long_side=400)).raise_for_status()
    changed = ensure_dataset_facts(conn, gateway, face_reader, [training], recheck=True)
    assert changed.computed == (url,)
    assert stored(conn)[url].facts["image_count"] == 2


def test_a_broken_zip_is_cached_as_an_error_and_not_fetched_again(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    control: httpx.Client,
) -> None:
    broken = app_world.put_zip("anna0001", b"PK\x03\x04 this is not really a zip")
    good = app_world.put_zip("anna0001", selfie_zip(3, long_side=400))
    trainings = [app_world.train("anna0001", zip_url=url) for url in (broken, good)]
    assert trainings[0].status == "failed"  # the trainer could not read it either

    scan = ensure_dataset_facts(conn, gateway, face_reader, trainings)
    assert set(scan.rejected) == {broken} and scan.computed == (good,)
    assert "not a readable ZIP" in scan.rejected[broken]
    assert load_dataset_facts(conn, [broken])[broken].error == scan.rejected[broken]
    downloads = blob_downloads(control)
    assert ensure_dataset_facts(conn, gateway, face_reader, trainings).already_cached == 2
    assert blob_downloads(control) == downloads


def test_too_big_is_cached_as_an_error_but_gone_is_tried_again(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    blobs: httpx.Client,
) -> None:
    big = app_world.put_zip("anna0001", selfie_zip(3, long_side=400))
    training = app_world.train("anna0001", zip_url=big)
    gone = training.input["input_images"].replace("-images.zip", "-missing.zip")
    missing = app_world.train("anna0001", zip_url=gone)
    scan = ensure_dataset_facts(conn, gateway, face_reader, [training, missing], max_bytes=10_000)
    assert scan.computed == () and set(scan.rejected) == {big}
    assert "more than the 10,000" in scan.rejected[big]
    assert stored(conn)[big].content_sha256 is None
    # A 404 may be a blob store's hiccup: not cached, so the next scan tries again (and the
    # user gets a note meanwhile), never a permanent "no photos".
    assert set(scan.failed) == {gone} and "404" in scan.failed[gone]
    assert gone not in stored(conn)


def test_an_outage_is_reported_and_not_cached(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    control: httpx.Client,
) -> None:
    url = app_world.put_zip("anna0001", selfie_zip(3, long_side=400))
    training = app_world.train("anna0001", zip_url=url)
    control.post("/faults", json={"status": 503, "path": "^/_blob/", "share": 1.0})
    scan = ensure_dataset_facts(conn, gateway, face_reader, [training])
    assert set(scan.failed) == {url} and "Could not download" in scan.failed[url]
    assert stored(conn) == {}

    control.delete("/faults")
    assert ensure_dataset_facts(conn, gateway, face_reader, [training]).computed == (url,)


def test_every_download_failure_stays_with_its_url(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
) -> None:
    """ZIP URLs come from the app's users: an address no download can read is that URL's
    rejection, cached with its reason; one that may work later is tried next time; the
    good one next to them is measured (a raw UnicodeError ended the whole call before)."""
    good = app_world.put_zip("anna0001", selfie_zip(3, long_side=400))
    path = good.split("/_blob/", 1)[1]
    port = httpx.URL(good).port
    unusable = {
        f"https://{'a' * 64}.example.com/_blob/{path}": "a label of 64 characters",
        f"https://xn--a.example.com/_blob/{path}": "not valid IDNA",
        f"https://blob.example.com/_blob/{path}\x7f": "control character",
        f"https://127.0.0.1:{port}/_blob/{path}": "does not answer in TLS",
    }
    gone = good.replace("-images.zip", "-missing.zip")
    # Readable, but too long to be the cache's key: PostgreSQL refuses such a row. (Not a
    # signature: that is kept as "[redacted]", so it makes no key too long.)
    too_long = f"{good}?filter=" + "".join(hashlib.sha256(b"%d" % n).hexdigest() for n in range(47))
    urls = [*unusable, good, gone, too_long]
    scan = ensure_dataset_facts(conn, gateway, face_reader, zip_trainings(*urls))
    assert scan.computed == (good,) and scan.requested == len(urls)
    assert set(scan.rejected) == {*unusable, too_long} and set(scan.failed) == {gone}
    rows = stored(conn)
    for url, reason in unusable.items():
        assert reason in scan.rejected[url]
        assert rows[url].content_sha256 is None and rows[url].facts["error"] == scan.rejected[url]
    assert "more than the 2,600 the console can keep track of" in scan.rejected[too_long]
    assert gone not in rows and too_long not in rows
    again = ensure_dataset_facts(conn, gateway, face_reader, zip_trainings(*urls))
    assert again.already_cached == len(unusable) + 1 and set(again.failed) == {gone}


def test_a_zip_sent_through_replicates_files_api(
    app_world: AppWorld,
    conn: Connection,
    gateway: ReplicateGateway,
    face_reader: FaceReader,
    control: httpx.Client,
) -> None:
    uploaded = gateway.upload_file(
        selfie_zip(3, long_side=400), filename="images.zip", content_type="application/zip"
    )
    training = app_world.train("anna0001", zip_url=uploaded.url)
    scan = ensure_dataset_facts(conn, gateway, face_reader, [training])
    assert scan.computed == (uploaded.url,)
    assert control.get("/stats").json()["counts"]["GET /v1/files/{id}/download"] == 1
    assert stored(conn)[uploaded.url].content_sha256 == uploaded.sha256
