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
ZIP from another. What is stored and downloaded is never changed: the URL as given stays
the cache key and the download address. (The gateway's own messages name a URL by
``core.gateway.urls.shown_url``, which drops the query altogether.)
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
    rest, hash_sign, fragment = url.partition("#")
    address, question, query = rest.partition("?")
    address = _USERINFO.sub(r"\1", address)
    shown = address + question + _redacted_parameters(query) if question else address
    return shown + hash_sign + _redacted_parameters(fragment) if hash_sign else shown


def with_urls_redacted(text: str) -> str:
    """``text`` (a message, a cell) with every URL in it as ``redacted_url`` shows it."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: redacted_url(found[0]), text)


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
