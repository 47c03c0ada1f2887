"""Settings (admin): every setting with its current value, and who has access."""

from __future__ import annotations

import streamlit as st

from core.config import Mode
from core.errors import DashboardError
from core.roles import Role
from core.staff import StaffMember
from dashboard import access, identity, loaders, messages, resources, tables

identity.require_role_on_page(Role.ADMIN)
st.title("Settings")
try:
    settings = resources.runtime().settings
    staff = loaders.staff_members()
    role_map = access.parse_role_map(identity.secrets_section("roles"))
except DashboardError as exc:
    messages.error(exc)
    st.stop()

st.caption(
    f"Mode **{settings.mode.value.upper()}**. Secret values are shown only as "
    "set/unset. Change settings in the environment or .streamlit/secrets.toml and "
    "restart the console."
)
st.dataframe(tables.settings_frame(settings), hide_index=True)

st.subheader("Staff")
st.caption(
    "[roles] in secrets wins over ops.staff for the same email. In DEMO, the "
    "'Acting as' list is ops.staff, or three built-in people when it is empty."
)
from_secrets = [StaffMember(email, role) for email, role in sorted(role_map.items())]
built_in = access.demo_staff(()) if settings.mode is Mode.DEMO and not staff else ()
if not staff and not from_secrets and not built_in:
    st.info("Nobody is listed: ops.staff is empty and the secrets have no [roles].")
else:
    st.dataframe(
        tables.staff_frame(
            [
                ("[roles] in secrets", from_secrets),
                ("ops.staff", staff),
                ("built in (DEMO, while ops.staff is empty)", built_in),
            ]
        ),
        hide_index=True,
    )
