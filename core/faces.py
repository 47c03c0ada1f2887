"""Faces in photos, offline: dlib's detector and its 128-d identity embeddings.

The model files ship inside the ``face_recognition_models`` package, so nothing is
downloaded. Loading them takes about a second: build one ``FaceReader`` and share it
per process).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold for its 128-d embeddings


@dataclass(frozen=True)
class Face:
    left: int
    top: int
    right: int
    bottom: int
    embedding: tuple[float, ...]

    @property
    def width(self) -> int:
        return self.right - self.left


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

    def read(self, image_bytes: bytes, *, max_side: int = 800) -> list[Face]:
        """Every frontal face in the photo, largest first."""
        with Image.open(io.BytesIO(image_bytes)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        return self.read_image(image, max_side=max_side)

    def read_image(self, image: Image.Image, *, max_side: int = 800) -> list[Face]:
        """Every frontal face in an already decoded, upright photo, largest first."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        scale = min(1.0, max_side / max(image.size))
        if scale < 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)))
        pixels = np.asarray(image)
        faces = []
        with self._lock:
            found = [
                (box, self._encoder.compute_face_descriptor(pixels, self._shape(pixels, box)))
                for box in self._detector(pixels, 1)
            ]
        for box, embedding in found:
            faces.append(
                Face(
                    left=round(box.left() / scale),
                    top=round(box.top() / scale),
                    right=round(box.right() / scale),
                    bottom=round(box.bottom() / scale),
                    embedding=tuple(float(value) for value in embedding),
                )
            )
        return sorted(faces, key=lambda face: -face.width)
