"""The user's recent generations as the app stored them (``ai_images`` and
``generated_images``), newest first, for the User page's pictures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, desc, select

from core.schema import ai_images, generated_images

RECENT = 8


@dataclass(frozen=True)
class Generation:
    url: str
    prompt: str | None
    created_at: datetime | None
    source: str  # which table and, for ai_images, which feature


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
                Generation(row.image_url, row.prompt, row.created_at, f"ai_images ({row.source})")
            )
    for row in conn.execute(
        select(
            generated_images.c.image_urls,
            generated_images.c.selected_url,
            generated_images.c.prompt,
            generated_images.c.created_at,
        )
        .where(generated_images.c.user_id == user_id)
        .order_by(desc(generated_images.c.created_at))
        .limit(limit)
    ):
        urls = [row.selected_url] if row.selected_url else _urls(row.image_urls)[:1]
        for url in urls:
            if url and url.startswith(("http://", "https://")):
                found.append(Generation(url, row.prompt, row.created_at, "generated_images"))
    found.sort(key=lambda item: (item.created_at is None, item.created_at), reverse=True)
    return found[:limit]
