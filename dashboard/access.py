"""Who may use the console, with which role: small pure functions, no Streamlit.

LIVE: the IdP proves the email (``st.login``); the role comes from the ``[roles]`` lists
in secrets, else from ``ops.staff``. An email in neither gets no access at all.
DEMO: there is no login; staff pick who they act as from ``ops.staff`` (or a built-in
list, one person per role, when that table is empty), so it serves only this machine.
LIVE: a login lasts ``SESSION_MAX_AGE_SECONDS`` and no longer than the IdP's ID token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from core.roles import Role
from core.staff import DEMO_STAFF, StaffMember

# Least privileged first: an email listed under two roles gets the lesser one, so a stale
# entry left behind after a change of role never grants more than intended.
_PRIVILEGE = (Role.SUPPORT, Role.PRODUCT, Role.ADMIN)
AUTH_REQUIRED_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def normalise_email(email: object) -> str | None:
    """Lower-cased, trimmed email, or None when there is no usable email."""
    if not isinstance(email, str):
        return None
    cleaned = email.strip().lower()
    return cleaned if "@" in cleaned else None


def verified_email(claims: Mapping[str, Any]) -> str:
    """The email the IdP vouches for, or "" (no email, or one it says is unverified).

    An IdP that sends ``email_verified: false`` lets people type any address; such an email
    must never match a staff entry.
    """
    if claims.get("email_verified") is False:
        return ""
    return normalise_email(claims.get("email")) or ""


def parse_role_map(section: Mapping[str, Any] | None) -> dict[str, Role]:
    """``[roles]`` from secrets (``support = ["a@x"]`` …) as email → role.

    Raises ConfigError for a role name that does not exist or a value that is not a list of
    emails, so a typo in secrets stops the console instead of silently locking people out.
    """
    if not section:
        return {}
    mapping: dict[str, Role] = {}
    for name, emails in section.items():
        try:
            role = Role(str(name).strip().lower())
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise ConfigError(
                f"[roles] in secrets has an unknown role {name!r}; use {known}."
            ) from None
        if isinstance(emails, str) or not isinstance(emails, Iterable):
            raise ConfigError(
                f"[roles] {role.value} must be a list of emails, like "
                f'{role.value} = ["someone@example.com"].'
            )
        for raw in emails:
            email = normalise_email(raw)
            if email is None:
                raise ConfigError(f"[roles] {role.value} lists {raw!r}, which is not an email.")
            current = mapping.get(email)
            if current is None or _PRIVILEGE.index(role) < _PRIVILEGE.index(current):
                mapping[email] = role
    return mapping


def role_for(
    email: object, *, role_map: Mapping[str, Role], staff: Iterable[StaffMember]
) -> Role | None:
    """The role of a logged-in email: ``[roles]`` in secrets first, then ``ops.staff``."""
    wanted = normalise_email(email)
    if wanted is None:
        return None
    if wanted in role_map:
        return role_map[wanted]
    for member in staff:
        if normalise_email(member.email) == wanted:
            return member.role
    return None


def demo_staff(staff: Iterable[StaffMember]) -> tuple[StaffMember, ...]:
    """Who DEMO users can act as: ``ops.staff`` if it has anyone, else the built-in three."""
    members = tuple(staff)
    return members or DEMO_STAFF


def login_provider(section: Mapping[str, Any]) -> str | None:
    """The provider ``st.login`` should use: None for the unnamed default (its keys sit
    directly in ``[auth]``), else the first complete named one (``[auth.google]``)."""
    if all(section.get(key) for key in PROVIDER_KEYS):
        return None
    for name, value in section.items():
        if isinstance(value, Mapping) and all(value.get(key) for key in PROVIDER_KEYS):
            return str(name)
    return None


def auth_problem(section: Mapping[str, Any] | None) -> str | None:
    """Why the ``[auth]`` secrets block cannot log anyone in, or None when it looks usable.

    Checks the keys ``st.login()`` needs, for the default provider or one named provider
    (``[auth.google]``); the IdP itself is only contacted at login.
    """
    if not section:
        return (
            "LIVE needs staff login, but the secrets have no [auth] block. Add [auth] "
            "with redirect_uri, cookie_secret, client_id, client_secret and "
            "server_metadata_url to .streamlit/secrets.toml (see "
            ".streamlit/secrets.toml.example), then restart."
        )
    missing = [key for key in AUTH_REQUIRED_KEYS if not section.get(key)]
    has_provider = all(section.get(key) for key in PROVIDER_KEYS) or any(
        isinstance(value, Mapping) and all(value.get(key) for key in PROVIDER_KEYS)
        for value in section.values()
    )
    if not has_provider:
        missing += [key for key in PROVIDER_KEYS if not section.get(key)]
    if missing:
        return (
            f"The [auth] block in secrets is missing {', '.join(missing)}, so nobody can "
            "log in. Complete it (see .streamlit/secrets.toml.example) and restart."
        )
    return None


def session_end(claims: Mapping[str, Any], *, max_age_seconds: float, now: float) -> str | None:
    """Why a LIVE login may no longer be used (the login page's message), or None.

    ``iat`` (when the IdP issued the ID token, that is, the login) and ``exp`` (when the IdP
    says the token expires) are seconds since the epoch. Every OIDC ID token carries both
    and authlib refuses a login without them; Streamlit keeps them in ``st.user`` but never
    looks at them again, and its identity cookie lasts 30 days. A claim that is missing or
    not a number is not checked (only a hand-made user, as in AppTest, lacks them).
    """
    expires = _epoch_seconds(claims.get("exp"))
    issued = _epoch_seconds(claims.get("iat"))
    if expires is not None and now >= expires:
        return (
            f"Your login expired at {_utc(expires)}: the identity provider's token for it "
            "is no longer valid. Log in again to continue."
        )
    if issued is not None and now - issued > max_age_seconds:
        return (
            f"Your session has ended: you logged in at {_utc(issued)}, and a login lasts "
            f"{_span(max_age_seconds)} here (SESSION_MAX_AGE_SECONDS). Log in again to "
            "continue."
        )
    return None


def session_left(claims: Mapping[str, Any], *, max_age_seconds: float, now: float) -> float | None:
    """Seconds until ``session_end`` will end this login (None: it cannot tell)."""
    ends = [
        moment
        for moment in (
            _epoch_seconds(claims.get("exp")),
            _plus(_epoch_seconds(claims.get("iat")), max_age_seconds),
        )
        if moment is not None
    ]
    return min(ends) - now if ends else None


def _epoch_seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _plus(moment: float | None, seconds: float) -> float | None:
    return None if moment is None else moment + seconds


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    whole = round(seconds)
    if whole >= 3600 and whole % 3600 == 0:
        return f"{whole // 3600} h"
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60} min"
    return f"{whole} s"


def is_loopback(address: str | None) -> bool:
    """Whether Streamlit's ``server.address`` serves this machine only.

    Unset or empty means every interface (Streamlit's default). ``localhost``, a loopback
    IP (127.0.0.0/8, ::1) and a Unix socket (``unix://...``) are local; a host name other
    than localhost is not trusted to resolve to loopback.
    """
    text = (address or "").strip()
    if not text:
        return False
    if text.startswith("unix://") or text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


def demo_bind_problem(address: str | None, *, app_path: str) -> str | None:
    """Why DEMO must not serve on ``address`` (the message, with the command to use), or
    None when it listens on loopback only.

    DEMO has no login: anyone who can reach it acts as any staff member, admin included.
    The repository's ``.streamlit/config.toml`` binds to loopback, but only when the
    console is started from the repository's root.
    """
    if is_loopback(address):
        return None
    shown = (address or "").strip().replace("`", "")
    where = f"on `{shown}`" if shown else "on every network interface"
    return (
        f"DEMO has no login, so it serves only this machine, but this console listens "
        f"{where}. Stop it and start it again on loopback:\n\n"
        f"`python -m streamlit run {app_path} --server.address 127.0.0.1`\n\n"
        "(from the repository's root, `python -m streamlit run dashboard/app.py` does this "
        "by itself). To serve other machines, configure LIVE, which requires staff login."
    )
