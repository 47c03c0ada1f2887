"""Which version a ``/v1`` request is about, for fault rules that name a version.

A prediction create names its version in the body (bare or ``owner/name:id``); a
model-addressed create runs its model's latest version; a training create names its
trainer version in the path; a read or cancel of a prediction or a training is about the
version stored with it (a training's is its trainer's, as Replicate reports it). Any
other request is about no version.
"""

from __future__ import annotations

import json
import re

from core.sandbox.engine import HEX64, split_version_ref
from core.sandbox.store import Store

_PREDICTION_CREATE = re.compile(r"/v1/predictions")
_MODEL_PREDICTION_CREATE = re.compile(r"/v1/models/([^/]+/[^/]+)/predictions")
_TRAINING_CREATE = re.compile(r"/v1/models/[^/]+/[^/]+/versions/([^/]+)/trainings")
_JOB = re.compile(r"/v1/(prediction|training)s/([^/]+)(/cancel)?")


def names_version_in_body(method: str, path: str) -> bool:
    """Whether the request's version is in its body, which must then be read first."""
    return method == "POST" and _PREDICTION_CREATE.fullmatch(path) is not None


def version_about(store: Store, method: str, path: str, body: bytes) -> str | None:
    """The bare id of the version the request is about, or None."""
    if names_version_in_body(method, path):
        return _body_version(body)
    if method == "POST" and (match := _MODEL_PREDICTION_CREATE.fullmatch(path)):
        latest = store.latest_version(match.group(1))
        return str(latest[0]["id"]) if latest else None
    if method == "POST" and (match := _TRAINING_CREATE.fullmatch(path)):
        return match.group(1) if HEX64.fullmatch(match.group(1)) else None
    if (match := _JOB.fullmatch(path)) and method == ("POST" if match.group(3) else "GET"):
        found = store.get_job(match.group(1), match.group(2))
        return str(found[0]["version"]) if found else None
    return None


def _body_version(body: bytes) -> str | None:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:  # the create itself answers that the body is not JSON
        return None
    parts = split_version_ref(parsed.get("version")) if isinstance(parsed, dict) else None
    return parts[1] if parts else None
