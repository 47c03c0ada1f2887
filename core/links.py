"""Where staff can see a model, version or training on Replicate itself, and a user on
the console's own User page (for links that leave the console: alerts).

In LIVE the pages link to replicate.com (the pages Replicate's own site shows for the
account); against any other base URL (DEMO's sandbox, a test server) there is no website,
so the links open the API's JSON for the same object instead, which is what exists there.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

REPLICATE_WEB = "https://replicate.com"
_API_HOST = "api.replicate.com"
# The User page's address and query parameter (``dashboard.navigation`` serves it there).
USER_PAGE_PATH = "user"
USER_PAGE_PARAM = "user"


def _is_replicate(base_url: str) -> bool:
    return urlsplit(base_url).hostname == _API_HOST


def model_link(base_url: str, model_id: str) -> str:
    """The model's page (``owner/name``)."""
    path = "/".join(quote(part, safe="") for part in model_id.split("/", 1))
    if _is_replicate(base_url):
        return f"{REPLICATE_WEB}/{path}"
    return f"{base_url.rstrip('/')}/v1/models/{path}"


def version_link(base_url: str, model_id: str, version_id: str) -> str:
    """One version of the model."""
    return f"{model_link(base_url, model_id)}/versions/{quote(version_id, safe='')}"


def training_link(base_url: str, training_id: str) -> str:
    """A training (Replicate shows trainings and predictions under ``/p/<id>``)."""
    if _is_replicate(base_url):
        return f"{REPLICATE_WEB}/p/{quote(training_id, safe='')}"
    return f"{base_url.rstrip('/')}/v1/trainings/{quote(training_id, safe='')}"


def prediction_link(base_url: str, prediction_id: str) -> str:
    """A prediction (on replicate.com under ``/p/<id>``, like a training)."""
    if _is_replicate(base_url):
        return f"{REPLICATE_WEB}/p/{quote(prediction_id, safe='')}"
    return f"{base_url.rstrip('/')}/v1/predictions/{quote(prediction_id, safe='')}"


def user_page_link(console_url: str, user_id: str) -> str:
    """The console's User page of ``user_id`` (``console_url``: CONSOLE_BASE_URL), as
    the Users table's "open ↗" opens it. Nothing of who is acting is kept: in LIVE the
    login is the browser's, and DEMO serves this machine only."""
    user = quote(user_id, safe="")
    return f"{console_url.rstrip('/')}/{USER_PAGE_PATH}?{USER_PAGE_PARAM}={user}"
