"""Secrets in training inputs: compared, never shown.

A training's ``input`` may carry credentials the trainer needs (``hf_token``,
``wandb_api_key``); the drift engine compares them between trainings, but evidence, the
timeline and the User page show ``[redacted]`` instead. One rule for every place that
shows an input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A key holding any of these (case-insensitive) holds a secret.
SECRET_KEY_MARKERS = ("token", "api_key", "apikey", "secret", "password", "credential")
REDACTED = "[redacted]"


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def shown_value(key: str, value: Any) -> Any:
    """``value``, or ``[redacted]`` when ``key`` names a secret."""
    return REDACTED if is_secret_key(key) else value


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with every secret replaced by ``[redacted]``."""
    return {key: shown_value(key, value) for key, value in values.items()}
