"""The retrain checks' measuring processes: the same facts as measuring here, every file
answered (unreadable ones with the decoder's reason), and processes that die mid-way (as
the OOM killer or a crashing decoder would kill them) cost no photo its measurement."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal

import pytest
from PIL import Image

from core.imaging.faces import FaceReader
from core.retrain.measure import CHECK_LONG_SIDE, THUMBNAIL_SIDE, PhotoMeasurer, measure_file
from tests.photos import face_photo

pytestmark = pytest.mark.timeout(240)


def _pool_pids() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


def test_the_processes_measure_as_this_process_does(
    photo_measurer: PhotoMeasurer, face_reader: FaceReader
) -> None:
    files = [(index, f"selfie-{index}.jpg", face_photo(index)) for index in range(4)]
    files.append((4, "notes.txt", b"not a photo at all"))
    measured = dict(photo_measurer.measure(files))

    assert sorted(measured) == [0, 1, 2, 3, 4]
    for key, name, content in files:
        assert measured[key] == measure_file(name, content, face_reader), name
    assert measured[0].facts is not None and measured[0].facts.face_count == 1
    assert measured[0].thumbnail is not None and measured[0].thumbnail.startswith(b"\xff\xd8")
    assert measured[4].facts is None
    assert measured[4].unreadable == "not an image"


def test_a_photo_is_measured_at_the_checks_size_from_its_own_size(
    face_reader: FaceReader,
) -> None:
    content = face_photo(1, long_side=3000)
    measured = measure_file("big.jpg", content, face_reader)

    with Image.open(io.BytesIO(content)) as opened:
        own_size = opened.size
    assert max(own_size) == 3000 > CHECK_LONG_SIDE
    assert measured.facts is not None
    assert (measured.facts.width, measured.facts.height) == own_size  # not the working copy's
    assert measured.facts.face_fraction is not None and 0.15 < measured.facts.face_fraction < 0.6
    assert measured.thumbnail is not None
    with Image.open(io.BytesIO(measured.thumbnail)) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)  # square: the grid lines up


def test_processes_killed_mid_way_cost_no_photo_its_measurement() -> None:
    files = [(index, f"selfie-{index}.jpg", face_photo(index)) for index in range(8)]
    others = _pool_pids()  # the session's measurer's, if started
    with PhotoMeasurer(2) as measurer:
        measurer.start()
        first_pids = _pool_pids() - others
        assert len(first_pids) == 2
        results = {}
        for count, (key, measured) in enumerate(measurer.measure(files)):
            results[key] = measured
            if count == 0:  # the other photos are in flight or queued
                for pid in first_pids:
                    os.kill(pid, signal.SIGKILL)
        second_pids = _pool_pids() - others

    assert sorted(results) == list(range(8))
    assert all(measured.facts is not None for measured in results.values()), {
        key: measured.unreadable for key, measured in results.items()
    }
    assert all(measured.facts and measured.facts.face_count == 1 for measured in results.values())
    assert second_pids and not second_pids & first_pids  # measured on new processes
