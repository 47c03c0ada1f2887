"""Secrets in training inputs and URLs: compared and used, never shown.

A training's ``input`` may carry credentials the trainer needs (``hf_token``,
``wandb_api_key``); the drift engine compares them between trainings, but evidence, the
timeline and the User page show ``[redacted]`` instead. One rule for every place that
shows an input.

A URL may carry its credentials too: ``user:password@`` before the host, or a signed
query (an S3, GCS or Azure SAS presigned URL, a CloudFront signed URL, an OAuth token).
``redacted_url`` is how such a URL is shown or logged: no userinfo, and the value of every
parameter in ``SIGNED_URL_PARAMETERS`` (or starting with one of
``SIGNED_URL_PREFIXES``, or named like a secret key) replaced by ``[redacted]``; the
other parameters, the host and the path stay as they were, so staff can still tell one
ZIP from another. (The gateway's own messages name a URL by ``core.gateway.urls.shown_url``,
which drops the query altogether.)

What schema ops keeps is redacted the same way, at the write: ``stored_url`` for a column
holding one URL, ``storable`` for a JSON value or a text (every URL inside it). A stored
URL says when something was taken out (``lost_secrets``): its userinfo becomes
``[redacted]@`` rather than nothing. Such a URL no longer downloads; whoever downloads it
asks its source for the full one (a training ZIP: ``core.ledger.sources``). The URL
Replicate delivers (``replicate.delivery``, no query) is stored as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

# A key holding any of these (case-insensitive) holds a secret.
SECRET_KEY_MARKERS = ("token", "api_key", "apikey", "secret", "password", "credential")
REDACTED = "[redacted]"

# Query parameters that sign a URL or carry a credential (names in lower case), with who
# uses them. Those holding a secret key marker (``X-Amz-Security-Token``, ``access_token``,
# ``X-Goog-Credential``…) are redacted by that rule too.
SIGNED_URL_PARAMETERS: Mapping[str, str] = {
    "signature": "S3 SigV2, GCS V2, CloudFront signed URLs",
    "awsaccesskeyid": "S3 SigV2 (the access key id)",
    "googleaccessid": "GCS V2 (the service account)",
    "key-pair-id": "CloudFront signed URLs",
    "policy": "CloudFront custom-policy signed URLs",
    "sig": "Azure SAS (the signature); many CDNs",
    "se": "Azure SAS (expiry)",
    "st": "Azure SAS (start)",
    "sp": "Azure SAS (permissions)",
    "sv": "Azure SAS (version)",
    "sr": "Azure SAS (resource)",
    "ss": "Azure account SAS (services)",
    "srt": "Azure account SAS (resource types)",
    "spr": "Azure SAS (protocol)",
    "sip": "Azure SAS (allowed IPs)",
    "si": "Azure SAS (stored access policy)",
    "sdd": "Azure SAS (directory depth)",
    "skoid": "Azure user delegation SAS (key object id)",
    "sktid": "Azure user delegation SAS (key tenant id)",
    "skt": "Azure user delegation SAS (key start)",
    "ske": "Azure user delegation SAS (key expiry)",
    "sks": "Azure user delegation SAS (key service)",
    "skv": "Azure user delegation SAS (key version)",
    "saoid": "Azure user delegation SAS (authorized object id)",
    "suoid": "Azure user delegation SAS (unauthorized object id)",
    "scid": "Azure user delegation SAS (correlation id)",
    "key": "Google API keys",
    "auth": "signed CDN URLs (Akamai, Bunny…)",
    "authorization": "credentials in the query",
    "hmac": "signed CDN URLs",
    "jwt": "tokens in the query",
    "code": "OAuth authorization codes",
}
# Every parameter of these families (S3 SigV4, GCS V4).
SIGNED_URL_PREFIXES = ("x-amz-", "x-goog-")

# A URL in a longer text: a scheme, "://", then anything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")
# "scheme://userinfo@": up to the authority's last "@" (a password may hold one).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_STORED_USERINFO = rf"\1{REDACTED}@"  # "[" and "]" are plain in a replacement


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def is_secret_parameter(name: str) -> bool:
    """Whether a URL's query parameter ``name`` (as written, maybe percent-encoded)
    carries a signature or a credential."""
    lowered = unquote_plus(name).strip().lower()
    return (
        lowered in SIGNED_URL_PARAMETERS
        or lowered.startswith(SIGNED_URL_PREFIXES)
        or is_secret_key(lowered)
    )


def _redacted_parameters(part: str) -> str:
    """A query (or fragment) with each secret parameter's value replaced."""
    pairs = []
    for pair in part.split("&"):
        name, sign, _ = pair.partition("=")
        pairs.append(f"{name}={REDACTED}" if sign and is_secret_parameter(name) else pair)
    return "&".join(pairs)


def redacted_url(url: str) -> str:
    """``url`` without its userinfo and with every signature-like parameter's value
    (query and fragment) replaced by ``[redacted]``; anything else as it was."""
    return _without_secrets(url, userinfo=r"\1")


def stored_url(url: str) -> str:
    """``url`` as schema ops keeps it: as ``redacted_url`` shows it, except that a
    userinfo becomes ``[redacted]@`` (so ``lost_secrets`` can tell). The same URL with
    another signature is stored the same; storing a stored URL changes nothing."""
    return _without_secrets(url, userinfo=_STORED_USERINFO)


def lost_secrets(url: str) -> bool:
    """Whether a stored URL had something taken out (and so no longer downloads)."""
    return REDACTED in url


def _without_secrets(url: str, *, userinfo: str) -> str:
    rest, hash_sign, fragment = url.partition("#")
    address, question, query = rest.partition("?")
    address = _USERINFO.sub(userinfo, address)
    shown = address + question + _redacted_parameters(query) if question else address
    return shown + hash_sign + _redacted_parameters(fragment) if hash_sign else shown


def with_urls_redacted(text: str) -> str:
    """``text`` (a message, a cell) with every URL in it as ``redacted_url`` shows it."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: redacted_url(found[0]), text)


def storable(value: Any) -> Any:
    """``value`` as schema ops may keep it: every URL in its text (strings, and the
    strings inside mappings, lists and tuples, which come back as dicts and lists) as
    ``stored_url`` gives it; anything else as it was."""
    if isinstance(value, str):
        if "://" not in value:
            return value
        return _URL_IN_TEXT.sub(lambda found: stored_url(found[0]), value)
    if isinstance(value, Mapping):
        return {key: storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def without_url_secrets(value: Any) -> Any:
    """``value`` with every URL in its text as ``redacted_url`` shows it (strings, and
    the strings inside mappings and lists, which come back as dicts and lists)."""
    if isinstance(value, str):
        return with_urls_redacted(value)
    if isinstance(value, Mapping):
        return {key: without_url_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_url_secrets(item) for item in value]
    return value


def shown_value(key: str, value: Any) -> Any:
    """``value``, or ``[redacted]`` when ``key`` names a secret. URLs inside it are left as
    they are: findings store what this gives as their evidence, and what is stored does
    not change; the tables that show it redact them (``with_urls_redacted``)."""
    return REDACTED if is_secret_key(key) else value


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with every secret replaced by ``[redacted]``."""
    return {key: shown_value(key, value) for key, value in values.items()}
