"""Table definitions: the app's tables (mirrored) and the console's own schema ``ops``.

``app_metadata`` mirrors the SSELFIE app's live database exactly as
``docs/app-facts.md`` describes it (live shape, not the repo's SQL scripts). In LIVE the
app owns these tables: the console only reads them and updates rows through audited
repairs; it NEVER creates, alters or drops them. ``create_app_tables`` (core.db) builds
them only for DEMO and tests, so fixtures there have the same columns, defaults,
constraints and indexes the real database has.

``ops_metadata`` (schema ``ops``) is the console's own: the audit log and the staff map.
It is created and changed only by the Alembic migrations in ``core/migrations``, which
keep their version table inside ``ops`` too, so the app's ``public`` schema is untouched.

Columns the facts name without details get plain, permissive types (varchar/text,
nullable, no default); all app timestamps are ``timestamp without time zone``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

OPS_SCHEMA = "ops"
STAFF_ROLES = ("support", "product", "admin")

app_metadata = MetaData()
ops_metadata = MetaData(schema=OPS_SCHEMA)
# procrastinate's tables live in schema ops too, but its own SQL makes and changes them.
QUEUE_TABLE_PREFIX = "procrastinate_"


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's SQL: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def ops_objects_only(name: str | None, type_: str, parent_names: object) -> bool:
    """What Alembic's autogenerate compares: schema ops only (never the app's tables),
    and not procrastinate's tables (migration 0004 installs them from its own SQL)."""
    if type_ == "schema":
        return name == OPS_SCHEMA
    if type_ == "table":
        return not (name or "").startswith(QUEUE_TABLE_PREFIX)
    return True


def _app_timestamp(name: str, *, now_default: bool = False) -> Column[datetime]:
    """A ``timestamp without time zone`` column, as the app's tables use throughout."""
    default = func.now() if now_default else None
    return Column(name, TIMESTAMP(timezone=False), server_default=default)


users = Table(
    "users",
    app_metadata,
    # New users get a UUID string, legacy users other strings ("45038279").
    Column("id", String, primary_key=True),
    Column("email", String, unique=True),
    Column("display_name", String),
    Column("first_name", String),
    Column("last_name", String),
    Column("profile_image_url", String),
    Column("plan", String, server_default="sselfie-studio"),
    Column("role", String, server_default="user"),
    Column("monthly_generation_limit", Integer),
    Column("generations_used_this_month", Integer),
    Column("stripe_customer_id", String),
    Column("stripe_subscription_id", String),
    Column("gender", String),  # UI values: woman, man, non-binary
    Column("ethnicity", String(100)),
    _app_timestamp("created_at", now_default=True),
    _app_timestamp("updated_at", now_default=True),
    _app_timestamp("last_login_at"),
    Column("stack_auth_id", String, unique=True),
    Column("supabase_user_id", String, index=True),
    Column("auth_id", String, unique=True),
)

# Exactly one row per user, overwritten on every retrain (the app keeps no history).
user_models = Table(
    "user_models",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "user_id",
        String,
        ForeignKey(
            "users.id",
            name="user_models_user_id_fkey",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        nullable=False,
    ),
    Column("replicate_model_id", String),  # owner/name
    Column("replicate_version_id", String),  # meant to be the bare 64-hex version id
    Column("trigger_word", String, nullable=False),
    # Written values: pending, training, completed, failed.
    Column("training_status", String, server_default="pending"),
    Column("training_id", String),
    Column("lora_weights_url", String),
    Column("lora_scale", Numeric),
    Column("training_progress", Integer, server_default=text("0")),
    Column("failure_reason", Text),
    Column("model_name", String),
    Column("model_type", String),  # flux-dev-lora
    Column("trained_model_path", String),
    Column("finetune_id", String),
    Column("is_luxury", Boolean, server_default=false()),
    Column("is_test", Boolean, server_default=false()),
    _app_timestamp("created_at", now_default=True),
    _app_timestamp("updated_at", now_default=True),
    _app_timestamp("started_at"),
    _app_timestamp("completed_at"),
    _app_timestamp("estimated_completion_time"),
    UniqueConstraint("user_id", name="user_models_user_id_key"),
    UniqueConstraint("trigger_word", name="user_models_trigger_word_key"),
    Index("idx_user_models_user_id", "user_id"),
    Index("idx_user_models_training_status", "training_status"),
    Index("idx_user_models_replicate_version_id", "replicate_version_id"),
    Index(
        "idx_user_models_user_id_not_test",
        "user_id",
        "is_test",
        postgresql_where=text("is_test = false"),
    ),
)

# The current training flow writes NO rows here.
selfie_uploads = Table(
    "selfie_uploads",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, index=True),
    Column("filename", String),
    Column("original_url", Text),
    Column("processed_url", Text),
    Column("processing_status", String),
    Column("validation_status", String),
    Column("error_details", JSONB),
    _app_timestamp("created_at", now_default=True),
    _app_timestamp("updated_at", now_default=True),
)

generated_images = Table(
    "generated_images",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, index=True),
    # Usually NULL.
    Column(
        "model_id", Integer, ForeignKey("user_models.id", name="generated_images_model_id_fkey")
    ),
    Column("category", String),
    Column("subcategory", String),
    Column("prompt", Text),
    Column("image_urls", Text),  # a JSON array serialised as a string, not jsonb
    Column("selected_url", Text),
    Column("saved", Boolean, server_default=false()),
    Column("description", Text),
    _app_timestamp("created_at", now_default=True),
)

ai_images = Table(
    "ai_images",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, index=True),
    Column("image_url", Text),
    Column("prompt", Text),
    Column("generated_prompt", Text),
    Column("prediction_id", String, index=True),
    # pending, generating, processing, completed, failed
    Column("generation_status", String),
    Column("source", String),  # maya_chat, feed_planner, carousel
    _app_timestamp("created_at", now_default=True),
    _app_timestamp("updated_at", now_default=True),
)

feed_posts = Table(
    "feed_posts",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, index=True),
    Column("image_url", Text),
    Column("caption", Text),
    Column("prediction_id", String, index=True),
    Column("generation_status", String),
    _app_timestamp("created_at", now_default=True),
    _app_timestamp("updated_at", now_default=True),
)

credit_transactions = Table(
    "credit_transactions",
    app_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, index=True),
    Column("amount", Integer),
    # purchase, subscription_grant, training, image, animation, refund, bonus
    Column("transaction_type", String),
    Column("reference_id", String, index=True),  # the prediction id for image charges
    Column("description", Text),
    Column("balance_after", Integer),
    _app_timestamp("created_at", now_default=True),
)


audit_log = Table(
    "audit_log",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_email", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("action", Text, nullable=False),
    # No FK: schema ops may live in another database (OPS_DATABASE_URL).
    Column("target_user_id", Text),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("reason", Text),
    Column("details", JSONB),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_target_user_id", "target_user_id", "id"),
    Index("ix_audit_log_actor_email", "actor_email", "id"),
    Index("ix_audit_log_action", "action", "id"),
)

# An admin's decision to leave a finding as it is ("keep the current version" after a
# retrain, or "leave as is" on a finding): while the row still holds ``row_values`` and no
# training newer than the decision exists, the diagnosis reports the finding as kept by it.
DECISION_KINDS = ("keep", "leave_as_is")
decisions = Table(
    "decisions",
    ops_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("decided_role", Text, nullable=False),
    Column("decided_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("row_fingerprint", Text, nullable=False),
    Column("row_values", JSONB, nullable=False),
    Column("retrain_id", BigInteger),
    Column("withdrawn_at", TIMESTAMP(timezone=True)),
    Column("withdrawn_by", Text),
    CheckConstraint(one_of("kind", DECISION_KINDS), name="ck_decisions_kind"),
    Index("ix_decisions_user", "user_id", "id"),
)

staff = Table(
    "staff",
    ops_metadata,
    Column("email", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("added_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "role IN ('support', 'product', 'admin')",
        name="ck_staff_role",
    ),
)
