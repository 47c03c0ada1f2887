"""The app-side rows a persona's history leaves: ``users``, ``user_models``, ``ai_images``
and ``generated_images``, as plain column dicts (pure: no database here)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from core.demo.history import PersonaHistory
from core.demo.personas import Cast

# Monthly image allowance per plan (the app's plans; studio is the default).
PLAN_GENERATION_LIMITS = {
    "sselfie-studio": 150,
    "content-creator-studio": 300,
    "one-time-session": 50,
}
SUBSCRIPTION_PLANS = frozenset({"sselfie-studio", "content-creator-studio"})


def user_row(history: PersonaHistory, *, now: datetime) -> dict[str, Any]:
    """The ``users`` row: signed up a few weeks before the first training."""
    cast = history.cast
    profile = cast.profile
    first_seen = _first_moment(history) or now
    signed_up = first_seen - timedelta(
        days=_stable_int(cast, "signup", 3, 40), minutes=_stable_int(cast, "minutes", 0, 600)
    )
    last_seen = _last_moment(history) or signed_up
    plan = profile.plan
    return {
        "id": cast.persona.user_id,
        "email": cast.persona.email,
        "display_name": f"{profile.first_name} {profile.last_name}",
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "profile_image_url": None,
        "plan": plan,
        "role": "user",
        "monthly_generation_limit": PLAN_GENERATION_LIMITS.get(plan, 150),
        "generations_used_this_month": len(history.generations),
        "stripe_customer_id": f"cus_{_stable_token(cast, 'customer', 14)}",
        "stripe_subscription_id": (
            f"sub_{_stable_token(cast, 'subscription', 24)}" if plan in SUBSCRIPTION_PLANS else None
        ),
        "gender": profile.gender,
        "ethnicity": profile.ethnicity,
        "created_at": signed_up,
        "updated_at": last_seen,
        "last_login_at": last_seen,
        "stack_auth_id": _stable_uuid(cast, "stack") if profile.legacy_auth else None,
        "supabase_user_id": None if profile.legacy_auth else _stable_uuid(cast, "supabase"),
        "auth_id": None if profile.legacy_auth else _stable_uuid(cast, "supabase"),
    }


def model_row(history: PersonaHistory) -> dict[str, Any] | None:
    """The ``user_models`` row as the app (and its faults) left it; None if never trained."""
    return history.row.columns() if history.row is not None else None


def ai_image_rows(history: PersonaHistory) -> list[dict[str, Any]]:
    """One ``ai_images`` row per recorded generation (Maya chat)."""
    return [
        {
            "user_id": history.cast.persona.user_id,
            "image_url": generation.image_url,
            "prompt": generation.concept,
            "generated_prompt": generation.prompt,
            "prediction_id": generation.prediction_id,
            "generation_status": generation.status,
            "source": "maya_chat",
            "created_at": generation.created_at,
            "updated_at": generation.created_at,
        }
        for generation in history.generations
    ]


def generated_image_rows(history: PersonaHistory) -> list[dict[str, Any]]:
    """One ``generated_images`` row per recorded generation; ``image_urls`` is a JSON
    string, ``model_id`` NULL, as the app writes them."""
    return [
        {
            "user_id": history.cast.persona.user_id,
            "model_id": None,
            "category": generation.category,
            "subcategory": generation.concept,
            "prompt": generation.prompt,
            "image_urls": json.dumps([generation.image_url] if generation.image_url else []),
            "selected_url": generation.image_url,
            "saved": False,
            "description": None,
            "created_at": generation.created_at,
        }
        for generation in history.generations
    ]


def _first_moment(history: PersonaHistory) -> datetime | None:
    return history.row.created_at if history.row is not None else None


def _last_moment(history: PersonaHistory) -> datetime | None:
    moments = [generation.created_at for generation in history.generations]
    if history.row is not None:
        moments.append(history.row.updated_at)
    return max(moments) if moments else None


def _digest(cast: Cast, label: str) -> bytes:
    return hashlib.sha256(f"{cast.persona.user_id}:{label}".encode()).digest()


def _stable_int(cast: Cast, label: str, low: int, high: int) -> int:
    return low + int.from_bytes(_digest(cast, label)[:4], "big") % (high - low + 1)


def _stable_token(cast: Cast, label: str, length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[byte % len(alphabet)] for byte in _digest(cast, label)[:length])


def _stable_uuid(cast: Cast, label: str) -> str:
    return str(uuid.UUID(bytes=_digest(cast, label)[:16], version=4))
