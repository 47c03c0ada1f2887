"""Which user a Replicate training belongs to: a pure decision over the app's rows.

Replicate does not know the app's users, and the app keeps only the latest attempt, so
a training is attached by the evidence left on both sides, strongest first:

1. ``training_id``: the row whose ``training_id`` is this training's id;
2. ``output_model``: the row whose ``replicate_model_id`` is the training's destination
   (the model part of ``output.version``; only known once it succeeded);
3. ``trigger_word``: the row whose ``trigger_word`` equals ``input.trigger_word``;
4. ``upload_path``: the user id in the ZIP's upload path ``training/{user_id}/`` inside
   ``input.input_images``, when that user has a row.

Values are compared after stripping surrounding whitespace (the app's rows hold such
junk) and otherwise exactly (case matters). A rule that points at more than one user is
ambiguous and is skipped in favour of the next one: a wrong owner is worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from core.drift.facts import AppRow, blank_to_none

ATTACH_RULES: tuple[str, ...] = ("training_id", "output_model", "trigger_word", "upload_path")
# The app stores training ZIPs at ``training/{user_id}/{timestamp}-images.zip``.
_UPLOAD_PATH = re.compile(r"(?:^|/)training/([^/]+)/[^/]")


class Attachable(Protocol):
    """A training as the gateway (``Training``) or the ledger (``TrainingRecord``) has it."""

    @property
    def id(self) -> str: ...

    @property
    def input(self) -> Mapping[str, Any]: ...

    @property
    def destination(self) -> str | None: ...


def upload_path_user(input_images: object) -> str | None:
    """The user id in a ZIP URL's path ``training/{user_id}/...``, or None."""
    if not isinstance(input_images, str):
        return None
    match = _UPLOAD_PATH.search(urlsplit(input_images.strip()).path)
    return blank_to_none(unquote(match.group(1))) if match else None


def attach(training: Attachable, rows: Iterable[AppRow]) -> tuple[str, str] | tuple[None, None]:
    """``(user_id, rule)`` for the first rule that names exactly one user, else
    ``(None, None)``. ``rows`` are the app's ``user_models`` rows (any subset that holds
    the candidates)."""
    candidates = list(rows)
    trigger = training.input.get("trigger_word")
    trigger = blank_to_none(trigger) if isinstance(trigger, str) else None
    destination = blank_to_none(training.destination)
    path_user = upload_path_user(training.input.get("input_images"))
    rules: tuple[tuple[str, str | None, Callable[[AppRow], str | None]], ...] = (
        ("training_id", blank_to_none(training.id), lambda row: row.training_id),
        ("output_model", destination, lambda row: row.replicate_model_id),
        ("trigger_word", trigger, lambda row: row.trigger_word),
        ("upload_path", path_user, lambda row: row.user_id),
    )
    for rule, wanted, value_of in rules:
        if wanted is None:
            continue
        users = {row.user_id for row in candidates if blank_to_none(value_of(row)) == wanted}
        if len(users) == 1:
            return users.pop(), rule
    return None, None
