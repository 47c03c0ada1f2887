"""Where staff can see a model, version or training on Replicate itself.

In LIVE the pages link to replicate.com (the pages Replicate's own site shows for the
account); against any other base URL (DEMO's sandbox, a test server) there is no website,
so the links open the API's JSON for the same object instead, which is what exists there.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

REPLICATE_WEB = "https://replicate.com"
_API_HOST = "api.replicate.com"


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
