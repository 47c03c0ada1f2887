"""Whether this console may repair at all: the audit log must share the app's database.

A repair and its audit record commit together only because both are written over the
same connection. With schema ``ops`` in another database (OPS_DATABASE_URL ≠
DATABASE_URL) that cannot hold, so repairs are refused rather than left unaudited.
"""

from __future__ import annotations

from core.config import Mode, Settings


def repairs_available(settings: Settings) -> tuple[bool, str]:
    """(True, why) when repairs can be audited in their own transaction; (False, what to
    change) otherwise. The message never contains a URL."""
    if settings.mode is Mode.DEMO:
        return True, (
            "DEMO: the audit log lives in the embedded database next to the app's "
            "tables, so each repair and its audit record commit together."
        )
    ops_url, app_url = settings.ops_database_url, settings.database_url
    app = app_url.get_secret_value() if app_url is not None else None
    if ops_url is None or ops_url.get_secret_value() == app:
        return True, (
            "The audit log (schema ops) is in the app's database, so each repair "
            "and its audit record commit together."
        )
    return False, (
        "Repairs are off: OPS_DATABASE_URL puts the audit log in another database "
        "than the app's tables (DATABASE_URL), so a repair and its audit record "
        "could not commit together. Unset OPS_DATABASE_URL (schema ops then lives "
        "in the app's database) to enable repairs."
    )
