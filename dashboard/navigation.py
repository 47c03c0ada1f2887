"""Which pages each role gets. A page not registered for a role cannot be reached at all,
not even by URL; the hidden User page is reachable by URL by every role that has it.

Paths are relative to this entry's folder (``dashboard/``): the pages live in ``pages/``.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from core.links import USER_PAGE_PARAM, USER_PAGE_PATH
from core.roles import Role

USERS = "../pages/users.py"
USER = "../pages/user.py"
SETTINGS = "../pages/settings.py"
RETRAIN = "../pages/retrain.py"
FLEET = "../pages/fleet.py"
AUDIT = "../pages/audit.py"
COMPARE = "../pages/compare.py"
REVIEW = "../pages/review.py"


def users_page() -> StreamlitPage:
    # Served at "/"; its own pathname is reserved but never shown, so /users is free for
    # the alias below.
    return st.Page(
        USERS, title="Users", icon=":material/group:", url_path="users-home", default=True
    )


# Query parameters that follow the visitor from page to page (DEMO's acting staff member).
KEPT_PARAMS = ("as",)


def kept_params() -> dict[str, str]:
    """The parameters that follow the visitor, as this page has them: a link to another
    page carries them, so in DEMO a new tab acts as the same person (in LIVE the login is
    the browser's, and none is set)."""
    return {name: str(st.query_params[name]) for name in KEPT_PARAMS if name in st.query_params}


def go(page: StreamlitPage, **query: str) -> NoReturn:
    """Switch to ``page`` with ``query``, keeping the parameters that follow the visitor:
    set here, in one step, rather than by the next page's run, which would rewrite the
    browser's history entry of this page (Back then lost the Users filters)."""
    st.switch_page(page, query_params={**kept_params(), **query})


# The User page's own parameter: on any other page it only appears on the history entry
# described in keep_place.
OPENED_PARAM = USER_PAGE_PARAM
_PLACES = "navigation_places"


def open_user(user_id: str) -> NoReturn:
    """The User page of ``user_id``."""
    go(user_page(), **{OPENED_PARAM: user_id})


def keep_place(page_name: str) -> None:
    """Call first on a page that opens users, so browser Back returns to it as it was.

    A switch that changes both the path and the query makes Streamlit's frontend push two
    history entries: first this page's path with the *new* query (``/?user=ID``), then the
    new page. Back lands on the first: this page without its filters. Seen here (the User
    page's parameter on this page), the query this page last ran with is put back (which
    replaces that history entry) and the page runs again with it; the query is remembered
    on every other run.
    """
    places: dict[str, dict[str, list[str]]] = st.session_state.setdefault(_PLACES, {})
    if OPENED_PARAM in st.query_params:
        kept = {
            name: st.query_params.get_all(name) for name in KEPT_PARAMS if name in st.query_params
        }
        st.query_params.from_dict(places.get(page_name, kept))
        st.rerun()
    places[page_name] = {name: st.query_params.get_all(name) for name in st.query_params}


def _to_users() -> None:
    st.switch_page(users_page(), query_params=dict(st.query_params))


def users_alias_page() -> StreamlitPage:
    """``/users`` typed or bookmarked: the Users page is the default, served at ``/``, so
    Streamlit would answer "page not found"; this hidden page forwards (query kept)."""
    return st.Page(_to_users, title="Users", url_path="users", visibility="hidden")


def user_page() -> StreamlitPage:
    """The detail page, opened with ``?user=ID`` (from the Users table or a shared link)."""
    return st.Page(
        USER,
        title="User",
        icon=":material/person:",
        url_path=USER_PAGE_PATH,
        visibility="hidden",
    )


def fleet_page() -> StreamlitPage:
    return st.Page(FLEET, title="Fleet drift", icon=":material/monitoring:", url_path="fleet")


# The Fleet page's views, a tab each, kept in ?view= (a link may open one).
FLEET_VIEW = "view"
DRIFT_VIEW = "Drift"
RETRAINS_VIEW = "Recent retrains"


def audit_page() -> StreamlitPage:
    """Admin only: every repair, undo and scan, with before/after and the reason."""
    return st.Page(AUDIT, title="Audit log", icon=":material/history:", url_path="audit")


def compare_page() -> StreamlitPage:
    """Everyone (within their daily budget): versions side by side, and their history."""
    return st.Page(COMPARE, title="Compare", icon=":material/compare:", url_path="compare")


def review_page() -> StreamlitPage:
    """Product and admins: blind pairwise votes on saved comparisons, and the results."""
    return st.Page(REVIEW, title="Blind review", icon=":material/how_to_vote:", url_path="review")


def retrain_page() -> StreamlitPage:
    """Admins: the retrain wizard and its promotion gate."""
    return st.Page(RETRAIN, title="Retrain", icon=":material/model_training:", url_path="retrain")


def settings_page() -> StreamlitPage:
    return st.Page(SETTINGS, title="Settings", icon=":material/settings:", url_path="settings")


# The pages only some roles get: (the page, its section, who gets it, the same in words).
_RESTRICTED = (
    (review_page, "Quality", (Role.PRODUCT, Role.ADMIN), "product and admins"),
    (retrain_page, "Quality", (Role.ADMIN,), "admins"),
    (audit_page, "Admin", (Role.ADMIN,), "admins"),
    (settings_page, "Admin", (Role.ADMIN,), "admins"),
)
_REFUSED = "navigation_refused"


def _refusal(page: StreamlitPage, allowed: str, role: Role) -> StreamlitPage:
    """What answers the address of ``page`` for a role that does not get it: never the
    page's script, only a note for the Users page saying why, and the switch to it."""
    title, address = page.title, page.url_path

    def refuse() -> None:
        st.session_state[_REFUSED] = (
            f"The {title} page (/{address}) is for {allowed} only, and you are "
            f"{role.value}: showing the Users page instead."
        )
        go(users_page())

    return st.Page(refuse, title=title, url_path=address, visibility="hidden")


def show_refused_page() -> None:
    """On the Users page: say which page was asked for and refused, once."""
    refused = st.session_state.pop(_REFUSED, None)
    if isinstance(refused, str):
        st.warning(refused, icon=":material/block:")


def pages_for(role: Role) -> dict[str, list[StreamlitPage]]:
    """The navigation for ``role``, by section. The address of a page the role does not
    get answers with a hidden refusal (``_refusal``), so a typed or shared link says why
    instead of falling back to the Users page without a word."""
    pages: dict[str, list[StreamlitPage]] = {
        "Users": [users_page(), user_page(), users_alias_page()],
        "Fleet": [fleet_page()],
        "Quality": [compare_page()],
    }
    for page, section, roles, allowed in _RESTRICTED:
        if role in roles:
            pages.setdefault(section, []).append(page())
        else:
            pages["Users"].append(_refusal(page(), allowed, role))
    return pages
