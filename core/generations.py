"""The user's recent generations as the app stored them (``ai_images`` and
``generated_images``), newest first, for the User page's pictures, each with a caption in
words ("Maya chat image, 3 Oct", "Studio photo · portrait, 3 Oct") instead of a table name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, desc, select

from core.schema import ai_images, generated_images

RECENT = 8
# ai_images.source: the app's feature that made the image.
FEATURE_WORDS = {
    "maya_chat": "Maya chat image",
    "feed_planner": "Feed planner image",
    "carousel": "Carousel image",
}
STUDIO = "Studio photo"  # generated_images: the app's photo studio, by category


@dataclass(frozen=True)
class Generation:
    url: str
    prompt: str | None
    created_at: datetime | None
    source: str  # what made it, in words: "Maya chat image", "Studio photo · portrait"

    def caption(self, *, this_year: int | None = None) -> str:
        """What it is and the day it was made: "Maya chat image, 3 Oct" (the year when
        not ``this_year``, by default today's)."""
        if self.created_at is None:
            return self.source
        when = self.created_at
        current = this_year if this_year is not None else datetime.now(UTC).year
        day = f"{when.day} {when:%b}" + ("" if when.year == current else f" {when.year}")
        return f"{self.source}, {day}"


def feature_words(source: str | None) -> str:
    """An ``ai_images.source`` in words; one the app added since, as "Image (<source>)"."""
    if not source or not source.strip():
        return "Image"
    return FEATURE_WORDS.get(source.strip(), f"Image ({source.strip()})")


def studio_words(category: str | None) -> str:
    """A ``generated_images`` row in words, with its category when it has one."""
    return f"{STUDIO} · {category.strip()}" if category and category.strip() else STUDIO


def _urls(text: str | None) -> list[str]:
    """``generated_images.image_urls``: a JSON array stored as text (sometimes not)."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [text] if text.startswith("http") else []
    return [str(item) for item in value if isinstance(item, str)] if isinstance(value, list) else []


def recent_generations(conn: Connection, user_id: str, *, limit: int = RECENT) -> list[Generation]:
    """The newest images with an http(s) URL from both tables, at most ``limit``."""
    found: list[Generation] = []
    for row in conn.execute(
        select(
            ai_images.c.image_url, ai_images.c.prompt, ai_images.c.created_at, ai_images.c.source
        )
        .where(ai_images.c.user_id == user_id, ai_images.c.image_url.is_not(None))
        .order_by(desc(ai_images.c.created_at))
        .limit(limit)
    ):
        if str(row.image_url).startswith(("http://", "https://")):
            found.append(
                Generation(row.image_url, row.prompt, row.created_at, feature_words(row.source))
            )
    for row in conn.execute(
        select(
            generated_images.c.image_urls,
            generated_images.c.selected_url,
            generated_images.c.prompt,
            generated_images.c.created_at,
            generated_images.c.category,
        )
        .where(generated_images.c.user_id == user_id)
        .order_by(desc(generated_images.c.created_at))
        .limit(limit)
    ):
        urls = [row.selected_url] if row.selected_url else _urls(row.image_urls)[:1]
        for url in urls:
            if url and url.startswith(("http://", "https://")):
                found.append(
                    Generation(url, row.prompt, row.created_at, studio_words(row.category))
                )
    found.sort(key=lambda item: (item.created_at is None, item.created_at), reverse=True)
    return found[:limit]
