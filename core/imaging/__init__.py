"""Photos: decoded safely from untrusted ZIPs and uploads (``decode``), measured once each
(``measure``: size, sharpness, exposure, faces, hash in one pass; one thumbnail maker).

Every path that reads a photo comes here: the ledger's dataset facts, comparisons'
identity references, the retrain checks and the sandbox's trainer.
"""

from core.imaging.decode import (
    WORKING_LONG_SIDE,
    Box,
    SkippedMember,
    ZipLimits,
    ZipPhoto,
    decode_photo,
    jpeg_quality_from_table,
    laplacian_variance,
    libjpeg_luminance_table,
    limits_table,
    read_zip_photos,
)

__all__ = [
    "WORKING_LONG_SIDE",
    "Box",
    "SkippedMember",
    "ZipLimits",
    "ZipPhoto",
    "decode_photo",
    "jpeg_quality_from_table",
    "laplacian_variance",
    "libjpeg_luminance_table",
    "limits_table",
    "read_zip_photos",
]
