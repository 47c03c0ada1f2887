"""Synthetic users for scale: ``users`` and ``user_models`` rows only (no photos, no
Replicate calls), loaded with PostgreSQL COPY so 100,000 take seconds, not minutes.

The spread follows the app's real shapes: mostly UUID ids with some legacy numeric ones,
the three plans, the UI's gender and ethnicity values (often unset), most rows
``completed``, some ``pending``/``failed``/``training``, and some users who never
trained. Trigger words are ``user`` + the first 8 characters of the id, unique across
the table (checked against what is already there), as the app's UNIQUE constraint needs.
Their models do not exist on the sandbox: they are rows to page, search and count.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from core.app.calls import APP_MODEL_TYPE, destination_model, first_trigger_word
from core.demo.personas import DEMO_EMAIL_DOMAIN
from core.demo.rows import PLAN_GENERATION_LIMITS, SUBSCRIPTION_PLANS
from core.schema import user_models, users

FIRST_NAMES = (
    "Ava",
    "Mia",
    "Zara",
    "Lucia",
    "Amelia",
    "Chiara",
    "Yuki",
    "Fatima",
    "Ines",
    "Nora",
    "Leah",
    "Camila",
    "Aaliyah",
    "Sienna",
    "Mei",
    "Ana",
    "Elena",
    "Hana",
    "Noor",
    "Ruby",
    "Tess",
    "Maya",
    "Layla",
    "Freya",
    "Jasmine",
    "Valentina",
    "Kemi",
    "Sara",
    "Ivy",
    "Rosa",
    "Liam",
    "Noah",
    "Mateo",
    "Omar",
    "Kenji",
    "Tariq",
    "Lucas",
    "Ethan",
    "Diego",
    "Kofi",
)
LAST_NAMES = (
    "Garcia",
    "Smith",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Muller",
    "Kim",
    "Haddad",
    "Silva",
    "Johnson",
    "Patel",
    "Lopez",
    "Brown",
    "Tanaka",
    "Ibrahim",
    "Novak",
    "Moreau",
    "Chen",
    "Williams",
    "Adeyemi",
    "Khan",
    "Larsen",
    "Costa",
    "Park",
    "Mendes",
    "Walker",
    "Sato",
    "Romero",
    "Osei",
    "Fischer",
    "Ali",
    "Clarke",
    "Reyes",
    "Dubois",
    "Bianchi",
    "Yilmaz",
)
# (value, weight) spreads.
PLANS = (("sselfie-studio", 70), ("content-creator-studio", 12), ("one-time-session", 18))
GENDERS = (("woman", 78), ("man", 12), ("non-binary", 3), (None, 7))
ETHNICITIES = (
    ("White", 30),
    ("Black", 14),
    ("Asian", 12),
    ("Latina", 13),
    ("Middle Eastern", 5),
    ("Indigenous", 1),
    ("Mixed", 8),
    ("Other", 4),
    (None, 13),
)
STATUSES = (("completed", 78), ("pending", 11), ("failed", 8), ("training", 3))
NEVER_TRAINED_SHARE = 0.12
LEGACY_ID_SHARE = 0.2
FAILURES = (
    "CUDA out of memory. Tried to allocate 2.00 GiB",
    "Training failed: input_images could not be downloaded",
    "Prediction interrupted; please retry (code: PA)",
)
HISTORY_DAYS = 540  # sign-ups spread over the last 18 months

USER_COLUMNS = (
    "id",
    "email",
    "display_name",
    "first_name",
    "last_name",
    "plan",
    "role",
    "monthly_generation_limit",
    "generations_used_this_month",
    "stripe_customer_id",
    "stripe_subscription_id",
    "gender",
    "ethnicity",
    "created_at",
    "updated_at",
    "last_login_at",
    "stack_auth_id",
    "supabase_user_id",
    "auth_id",
)
MODEL_COLUMNS = (
    "user_id",
    "replicate_model_id",
    "replicate_version_id",
    "trigger_word",
    "training_status",
    "training_id",
    "lora_weights_url",
    "lora_scale",
    "training_progress",
    "failure_reason",
    "model_name",
    "model_type",
    "is_luxury",
    "is_test",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
)
# Byte -> character tables: random bytes translated in C, not one choice per character.
_ALPHANUMERIC = bytes(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[byte % 62]
    for byte in range(256)
)
_BASE32 = bytes(b"abcdefghijklmnopqrstuvwxyz234567"[byte % 32] for byte in range(256))


@dataclass(frozen=True)
class _Taken:
    """Ids and 8-character id prefixes already used (the prefix makes the trigger word)."""

    ids: set[str]
    prefixes: set[str]


def add_synthetic_users(*, engine: Engine, count: int, owner: str = "sandrasocial") -> int:
    """Add ``count`` synthetic users (and a model row for most); returns users added.

    Each call draws new users (seeded by how many users exist, so a rerun on the same
    database is reproducible). Raises nothing on ``count`` 0.
    """
    if count <= 0:
        return 0
    taken = _taken(engine)
    rng = random.Random(f"synthetic:{len(taken.ids)}")
    now = datetime.now(UTC).replace(tzinfo=None)
    user_rows: list[tuple[Any, ...]] = []
    model_rows: list[tuple[Any, ...]] = []
    for user_id in _new_ids(rng, taken, count):
        user, model = _rows(rng, user_id, owner, now)
        user_rows.append(tuple(user[column] for column in USER_COLUMNS))
        if model is not None:
            model_rows.append(tuple(model[column] for column in MODEL_COLUMNS))
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection  # psycopg.Connection: COPY is psycopg's API
        with dbapi.cursor() as cursor:
            _copy(cursor, "users", USER_COLUMNS, user_rows)
            _copy(cursor, "user_models", MODEL_COLUMNS, model_rows)
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return len(user_rows)


def _copy(
    cursor: Any, table: str, columns: tuple[str, ...], table_rows: list[tuple[Any, ...]]
) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in table_rows:
            copy.write_row(row)


def _taken(engine: Engine) -> _Taken:
    with engine.connect() as conn:
        ids = set(conn.execute(select(users.c.id)).scalars())
        triggers = conn.execute(select(user_models.c.trigger_word)).scalars()
        prefixes = {user_id[:8] for user_id in ids}
        prefixes |= {trigger.removeprefix("user")[:8] for trigger in triggers}
    return _Taken(ids, prefixes)


def _new_ids(rng: random.Random, taken: _Taken, count: int) -> Iterator[str]:
    """Fresh ids whose 8-character prefix (and so trigger word) is unused."""
    made = 0
    while made < count:
        if rng.random() < LEGACY_ID_SHARE:
            candidate = str(rng.randrange(10_000_000, 99_999_999))
        else:
            candidate = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if candidate in taken.ids or candidate[:8] in taken.prefixes:
            continue
        taken.ids.add(candidate)
        taken.prefixes.add(candidate[:8])
        made += 1
        yield candidate


def _pick(rng: random.Random, spread: tuple[tuple[Any, int], ...]) -> Any:
    values = [value for value, _ in spread]
    weights = [weight for _, weight in spread]
    return rng.choices(values, weights)[0]


def _rows(
    rng: random.Random, user_id: str, owner: str, now: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    plan = _pick(rng, PLANS)
    signed_up = now - timedelta(days=rng.uniform(1, HISTORY_DAYS))
    last_login = signed_up + (now - signed_up) * rng.random()
    legacy = user_id.isdigit()
    auth = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user = {
        "id": user_id,
        "email": f"{first}.{last}.{user_id[:8]}@{DEMO_EMAIL_DOMAIN}".lower(),
        "display_name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "plan": plan,
        "role": "user",
        "monthly_generation_limit": PLAN_GENERATION_LIMITS[plan],
        "generations_used_this_month": rng.randrange(0, PLAN_GENERATION_LIMITS[plan]),
        "stripe_customer_id": f"cus_{_token(rng, 14)}",
        "stripe_subscription_id": f"sub_{_token(rng, 24)}" if plan in SUBSCRIPTION_PLANS else None,
        "gender": _pick(rng, GENDERS),
        "ethnicity": _pick(rng, ETHNICITIES),
        "created_at": signed_up,
        "updated_at": last_login,
        "last_login_at": last_login,
        "stack_auth_id": auth if legacy else None,
        "supabase_user_id": None if legacy else auth,
        "auth_id": None if legacy else auth,
    }
    if rng.random() < NEVER_TRAINED_SHARE:
        return user, None
    return user, _model_row(rng, user_id, owner, signed_up, now)


def _model_row(
    rng: random.Random, user_id: str, owner: str, signed_up: datetime, now: datetime
) -> dict[str, Any]:
    status = _pick(rng, STATUSES)
    first_training = signed_up + (now - signed_up) * rng.uniform(0.0, 0.3)
    started = first_training + (now - first_training) * rng.uniform(0.0, 1.0) ** 3
    finished = started + timedelta(minutes=rng.uniform(4, 25))
    model_id = destination_model(owner, user_id)
    submitted = status != "pending"
    return {
        "user_id": user_id,
        "replicate_model_id": model_id if status != "pending" or rng.random() < 0.5 else None,
        "replicate_version_id": _hex(rng, 64) if status == "completed" else None,
        "trigger_word": first_trigger_word(user_id),
        "training_status": status,
        "training_id": _token(rng, 26, _BASE32) if submitted else None,
        "lora_weights_url": (f"https://replicate.delivery/xezq/{_token(rng, 40)}/trained_model.tar")
        if status == "completed"
        else None,
        "lora_scale": rng.choice((1.0, 1.0, 1.0, 0.9)),
        "training_progress": 100
        if status == "completed"
        else rng.randrange(0, 100)
        if status == "training"
        else 0,
        "failure_reason": rng.choice(FAILURES) if status == "failed" else None,
        "model_name": model_id.split("/", 1)[1],
        "model_type": APP_MODEL_TYPE,
        "is_luxury": False,
        "is_test": False,
        "created_at": first_training,
        "updated_at": finished if status in ("completed", "failed") else started,
        "started_at": started if submitted else None,
        "completed_at": finished if status == "completed" else None,
    }


def _hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(4 * length):0{length}x}"


def _token(rng: random.Random, length: int, table: bytes = _ALPHANUMERIC) -> str:
    return rng.randbytes(length).translate(table).decode()
