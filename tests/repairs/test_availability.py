"""repairs_available: repairs only where the audit log shares the app's database."""

from __future__ import annotations

import pytest

from core.config import get_settings
from core.repairs import repairs_available

APP_DB = "postgresql://app:s3cret@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require"
OPS_DB = "postgresql://ops:0ps3cret@ep-other-2.eu-central-1.aws.neon.tech/ops"
TOKEN = "r8_N4hQz0bT7kLw2mPq9sXv3cYd5fGj8hKa1eRu6"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "OPS_DATABASE_URL", "REPLICATE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_demo_repairs() -> None:
    available, why = repairs_available(get_settings())
    assert available and "DEMO" in why


@pytest.mark.parametrize("ops", [None, APP_DB, APP_DB.replace("postgresql://", "postgres://")])
def test_live_with_the_audit_log_in_the_apps_database_repairs(ops: str | None) -> None:
    settings = get_settings(database_url=APP_DB, replicate_api_token=TOKEN, ops_database_url=ops)
    assert repairs_available(settings)[0]


def test_live_with_the_audit_log_elsewhere_refuses_and_says_why() -> None:
    settings = get_settings(database_url=APP_DB, replicate_api_token=TOKEN, ops_database_url=OPS_DB)
    available, why = repairs_available(settings)
    assert not available
    assert "OPS_DATABASE_URL" in why and "Unset OPS_DATABASE_URL" in why
    assert "s3cret" not in why and "neon.tech" not in why
