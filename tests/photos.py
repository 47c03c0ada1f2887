"""Real face photos for tests: the demo world's photo maker (``core.demo.photos``).

Each photo varies crop, mirror, rotation and light, so a dataset looks like a set of
selfies; the arguments make the datasets the app produced: few, squeezed, blurry.
"""

from __future__ import annotations

from core.demo.photos import face_photo, selfie_zip, zip_of

__all__ = ["face_photo", "selfie_zip", "zip_of"]
