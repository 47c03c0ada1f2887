"""Faces in photos, offline: dlib's detector and its 128-d identity embeddings.

The model files ship inside the ``face_recognition_models`` package, so nothing is
downloaded. Loading them takes about a second: build one ``FaceReader`` and share it
per process.

A detection counts as a face only when dlib's detector scores it at least
``MIN_FACE_SCORE``. dlib's own cut-off is 0, which lets through things that merely look
a little like a face: the mission patch on the astronaut's suit scores 0.12 and was
counted as a second face.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.errors import DataRejected
from core.imaging import SkippedMember, decode_photo

SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold for its 128-d embeddings
# Calibrated on 2,250 demo photos (core.demo.photos: 25 looks x 36 shots blurred by 4 px,
# the same squeezed to 600 px at JPEG quality 55, 25 x 18 sharp at 1280 px): the weakest
# real face scored 0.28 (blurred; 99% of them over 0.44), sharp and squeezed ones 0.48 and
# up; the mission patch on the unpainted portrait 0.12, every other detection under 0.07.
# Midway between the patch and the weakest face.
MIN_FACE_SCORE = 0.2
# dlib finds faces down to 80 px; one upsampling finds them down to 40 px.
UPSAMPLE_TIMES = 1


@dataclass(frozen=True)
class Face:
    """One face: its box in the photo's pixels, dlib's detector score and its embedding."""

    left: int
    top: int
    right: int
    bottom: int
    score: float
    embedding: tuple[float, ...]

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def distance(a: Face, b: Face) -> float:
    """Euclidean distance of two embeddings: under 0.6 is the same person for dlib."""
    return float(np.linalg.norm(np.asarray(a.embedding) - np.asarray(b.embedding)))


class FaceReader:
    """Finds faces and computes their embeddings. Safe to share between threads: dlib's
    models are not, so one read runs at a time (dlib releases the GIL while it runs)."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as models

        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._lock = threading.Lock()

    def read(
        self, image_bytes: bytes, *, max_side: int = 800, min_score: float = MIN_FACE_SCORE
    ) -> list[Face]:
        """Every frontal face in the photo file, largest first.

        The file is decoded as training photos are (``core.imaging.decode_photo``: bounded,
        upright, RGB); ``DataRejected`` says why when it is not a usable photo.
        """
        decoded = decode_photo("photo", io.BytesIO(image_bytes), byte_size=len(image_bytes))
        if isinstance(decoded, SkippedMember):
            raise DataRejected(f"the photo cannot be read: {decoded.reason}")
        faces = self.read_image(decoded.image, max_side=max_side, min_score=min_score)
        # Boxes are in the decoded copy's pixels; the caller knows the file's own size.
        scale = max(decoded.size) / max(decoded.image.size)
        return [_scaled(face, scale) for face in faces] if scale != 1.0 else faces

    def read_image(
        self, image: Image.Image, *, max_side: int = 800, min_score: float = MIN_FACE_SCORE
    ) -> list[Face]:
        """Every frontal face scoring at least ``min_score`` in a decoded, upright photo,
        largest first; boxes in ``image``'s pixels."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        scale = min(1.0, max_side / max(image.size))
        if scale < 1.0:
            # At least 1 px each way: a 1x40000 image scaled to 800 px would be 0 px wide.
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size)
        pixels = np.asarray(image)
        with self._lock:
            boxes, scores, _ = self._detector.run(pixels, UPSAMPLE_TIMES, min_score)
            found = [
                (
                    box,
                    float(score),
                    self._encoder.compute_face_descriptor(pixels, self._shape(pixels, box)),
                )
                for box, score in zip(boxes, scores, strict=True)
                if score >= min_score
            ]
        faces = [
            Face(
                left=round(box.left() / scale),
                top=round(box.top() / scale),
                right=round(box.right() / scale),
                bottom=round(box.bottom() / scale),
                score=score,
                embedding=tuple(float(value) for value in embedding),
            )
            for box, score, embedding in found
        ]
        return sorted(faces, key=lambda face: -face.width)


def _scaled(face: Face, scale: float) -> Face:
    return Face(
        left=round(face.left * scale),
        top=round(face.top * scale),
        right=round(face.right * scale),
        bottom=round(face.bottom * scale),
        score=face.score,
        embedding=face.embedding,
    )


class FaceReaders:
    """One dlib face reader per thread, loaded on first use (each reads one photo at a
    time; threads with readers of their own read photos in parallel)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> FaceReader:
        reader: FaceReader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = FaceReader()
            self._local.reader = reader
        return reader


class SharedReaders:
    """A few dlib readers shared by any number of threads, handed out in turn: as many
    photos read at once as there are readers (each serialises its own), loaded on first
    use. For a process whose threads come and go (the command line's pool), where one
    reader per thread would load dlib's models again for every thread."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._readers: list[FaceReader] = []
        self._turn = 0
        self._lock = threading.Lock()

    def __call__(self) -> FaceReader:
        with self._lock:
            if len(self._readers) < self._size:
                self._readers.append(FaceReader())
                return self._readers[-1]
            self._turn = (self._turn + 1) % self._size
            return self._readers[self._turn]
