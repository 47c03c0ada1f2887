"""Blind review's pairs, built from a comparison as it finishes: two images of the same
user, prompt and seed made by two different versions (the repeat of column A is never
paired: it is the noise floor, not a version). Built in the transaction that finishes
the comparison (``core.compare.run``); the votes on them are ``core.review``'s.
"""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.compare.plan import REPEAT
from core.compare.tables import comparison_images, comparisons, review_pairs


def build_pairs(conn: Connection, comparison_id: int) -> int:
    """Pair the comparison's succeeded images (same seed, different versions); how many
    new pairs."""
    header = conn.execute(
        select(comparisons.c.user_id).where(comparisons.c.id == comparison_id)
    ).one_or_none()
    if header is None:
        return 0
    images = conn.execute(
        select(
            comparison_images.c.id,
            comparison_images.c.seed,
            comparison_images.c.version_id,
            comparison_images.c.letter,
        ).where(
            comparison_images.c.comparison_id == comparison_id,
            comparison_images.c.status == "succeeded",
            comparison_images.c.preview.is_not(None),
            comparison_images.c.letter != REPEAT,
        )
    ).all()
    by_seed: dict[int, list[tuple[int, str]]] = {}
    for image in images:
        by_seed.setdefault(image.seed, []).append((image.id, image.version_id))
    rows = []
    for same_seed in by_seed.values():
        seen: set[frozenset[str]] = set()
        for (first_id, first_version), (second_id, second_version) in combinations(
            sorted(same_seed), 2
        ):
            versions = frozenset((first_version, second_version))
            if first_version == second_version or versions in seen:
                continue  # the same version twice (latest and site) says nothing of versions
            seen.add(versions)
            rows.append(
                {
                    "comparison_id": comparison_id,
                    "user_id": header.user_id,
                    "image_x": first_id,
                    "image_y": second_id,
                    "version_x": first_version,
                    "version_y": second_version,
                }
            )
    if not rows:
        return 0
    inserted = conn.execute(
        pg_insert(review_pairs).values(rows).on_conflict_do_nothing().returning(review_pairs.c.id)
    ).all()
    return len(inserted)
