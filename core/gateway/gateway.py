"""The one way the console talks to Replicate: the official client, injected.

``ReplicateGateway`` wraps a ``ReplicateConnection`` (``build_client``: the official
client pointed at api.replicate.com in LIVE, at the sandbox in DEMO and tests) and gives
back the project's own values (``core.gateway.values``), its own errors
(``core.errors``), shared rate limiting and bounded retries.

The client sends every request; the gateway reads the answer (``core.gateway.exchange``):
values come from the JSON Replicate sent, not from the client's pydantic models, which
reject shapes Replicate really sends. So no client parse error ever leaves the gateway,
and a paid create whose accepted answer cannot be read at all is ``CreateOutcomeUnknown``
with its id when the answer named one. How each create avoids being sent twice is said on
the method.

Why one long module: it is the single door to Replicate, and every call's retries, pace,
circuit breaker and create guard are rules that must be read together; the values, the
exchange, the limits and the lost-create search already live beside it.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import httpx

from core.errors import (
    Conflict,
    DashboardError,
    DataRejected,
    ReplicateError,
    ReplicateNotFound,
    ReplicateUnavailable,
)
from core.gateway.answers import ApiRefusal
from core.gateway.breaker import OUTAGES, CircuitBreaker
from core.gateway.client import ReplicateConnection, build_client, close_client
from core.gateway.download import (
    ANSWER_DEADLINE_SECONDS,
    DOWNLOAD_DEADLINE_SECONDS,
    Deadline,
    fetch,
    own_file_path,
    parse_download_url,
    ssl_cause,
    unusable,
)
from core.gateway.exchange import get_json, read, value_of
from core.gateway.limits import Outcome, RateLimits, TokenBucket, map_bounded
from core.gateway.retry import CallKind, RetryPolicy, call_with_retries, describe
from core.gateway.urls import shown_url
from core.gateway.values import (
    ModelVersion,
    Prediction,
    ReplicateModel,
    Training,
    UploadedFile,
    is_version_hash,
)

# build_client and close_client live in core.gateway.client; callers import them from here.
__all__ = ["ReplicateConnection", "ReplicateGateway", "build_client", "close_client"]

T = TypeVar("T")


class ReplicateGateway:
    """Typed, rate-limited, retrying access to Replicate. Safe to share between threads."""

    def __init__(
        self,
        connection: ReplicateConnection,
        *,
        limits: RateLimits | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._connection = connection
        self._limits = limits or RateLimits()
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._breaker = breaker

    @property
    def base_url(self) -> str:
        """The Replicate API this gateway talks to (no trailing slash)."""
        return str(self._connection.base_url).rstrip("/")

    def close(self) -> None:
        """Close the HTTP sessions (their keep-alive sockets). Idempotent."""
        self._connection.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _call(
        self,
        action: str,
        kind: CallKind,
        attempt: Callable[[], T],
        *,
        bucket: TokenBucket | None = None,
    ) -> T:
        limiter = bucket or self._limits.other_calls
        breaker = self._breaker
        if breaker is not None:
            breaker.before_call(action)
        try:
            result = call_with_retries(
                attempt,
                action=action,
                kind=kind,
                policy=self._policy,
                before_attempt=limiter.acquire,
                sleep=self._sleep,
                rng=self._rng,
            )
        except OUTAGES as exc:
            if breaker is not None:
                breaker.failed(exc)
            raise
        except ReplicateError:
            if breaker is not None:
                breaker.succeeded()  # Replicate answered (404, 422...): it is up
            raise
        if breaker is not None:
            breaker.succeeded()
        return result

    def _pages(self, first: str, action: str) -> Iterable[dict[str, Any]]:
        """Every result of a paged list, newest first, following ``next`` links."""
        url: str | None = first
        while url is not None:
            page = self._call(action, CallKind.SAFE, partial(get_json, self._connection, url))
            results = page.get("results")
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise ReplicateError(
                    f"Replicate's answer while {action} could not be read (no list of "
                    "results). If it persists, Replicate's API has changed: tell engineering."
                )
            yield from results
            next_url = page.get("next")
            url = next_url if isinstance(next_url, str) and next_url else None

    # -- models and versions -------------------------------------------------------------------
    def get_model(self, model_id: str) -> ReplicateModel | None:
        """The model, or None when Replicate answers 404."""
        _check_model_id(model_id)
        client = self._connection.client
        try:
            return self._call(
                f"reading model {model_id}",
                CallKind.SAFE,
                partial(
                    read,
                    self._connection,
                    ReplicateModel.from_api,
                    partial(client.models.get, model_id),
                    "model",
                ),
            )
        except ReplicateNotFound:
            return None

    def get_models(
        self, model_ids: Iterable[str], *, max_workers: int = 8
    ) -> list[Outcome[str, ReplicateModel | None]]:
        """Many models at once, at most ``max_workers`` in flight, failures kept per id."""
        return map_bounded(self.get_model, model_ids, max_workers=max_workers)

    def list_versions(self, model_id: str) -> list[ModelVersion]:
        """ALL versions of a model, newest first (the client's ``versions.list()`` stops
        after the first page, so the gateway follows ``next`` itself)."""
        _check_model_id(model_id)
        owner, name = model_id.split("/")
        action = f"listing versions of {model_id}"
        return [
            value_of(ModelVersion.from_api, item, 200, "version")
            for item in self._pages(f"/v1/models/{owner}/{name}/versions", action)
        ]

    def version_input_schema(self, model_id: str, version_id: str) -> dict[str, Any] | None:
        """The ``Input`` schema a version declares (``openapi_schema.components.schemas
        .Input``): what Replicate passes to the model; it drops anything else silently.
        None when Replicate gives no schema (``openapi_schema: null`` is allowed)."""
        return self._version_schema(model_id, version_id, "Input")

    def trainer_input_schema(self, trainer: str, version_id: str) -> dict[str, Any] | None:
        """The ``TrainingInput`` schema a trainer version declares: what a training passes
        to the trainer; Replicate drops anything else silently. None without a schema."""
        return self._version_schema(trainer, version_id, "TrainingInput")

    def _version_schema(
        self, model_id: str, version_id: str, schema_name: str
    ) -> dict[str, Any] | None:
        _check_model_id(model_id)
        if not is_version_hash(version_id):
            raise DataRejected(f"A version is a bare 64-hex id, not {version_id!r}.")
        owner, name = model_id.split("/")
        raw = self._call(
            f"reading version {version_id[:12]} of {model_id}",
            CallKind.SAFE,
            partial(get_json, self._connection, f"/v1/models/{owner}/{name}/versions/{version_id}"),
        )
        schema = raw.get("openapi_schema")
        components = schema.get("components") if isinstance(schema, dict) else None
        schemas = components.get("schemas") if isinstance(components, dict) else None
        found = schemas.get(schema_name) if isinstance(schemas, dict) else None
        return found if isinstance(found, dict) else None

    def create_model(
        self,
        model_id: str,
        *,
        visibility: str = "private",
        hardware: str = "gpu-t4",
        description: str | None = None,
    ) -> ReplicateModel:
        """Create a destination model. Safe to retry: names are unique, so a retry that
        finds the model already there (409) returns the existing model."""
        _check_model_id(model_id)
        owner, name = model_id.split("/")
        params: dict[str, Any] = {"visibility": visibility, "hardware": hardware}
        if description:
            params["description"] = description
        create = partial(self._connection.client.models.create, owner, name, **params)
        try:
            return self._call(
                f"creating model {model_id}",
                CallKind.SAFE,
                partial(read, self._connection, ReplicateModel.from_api, create, "model"),
            )
        except ReplicateError as exc:
            if exc.status != 409:
                raise
            existing = self.get_model(model_id)
            if existing is None:
                raise Conflict(f"Model {model_id} exists but cannot be read.") from exc
            return existing

    # -- trainings ---------------------------------------------------------------------------
    def get_training(self, training_id: str) -> Training:
        client = self._connection.client
        return self._call(
            f"reading training {training_id}",
            CallKind.SAFE,
            partial(
                read,
                self._connection,
                Training.from_api,
                partial(client.trainings.get, training_id),
                "training",
            ),
        )

    def list_trainings(
        self, *, until_id: str | None = None, created_after: datetime | None = None
    ) -> list[Training]:
        """Account trainings, newest first: all pages, or down to (not including)
        ``until_id`` when it is given and found, or to the first created before
        ``created_after`` (where a create whose answer was lost is looked for)."""
        trainings: list[Training] = []
        for item in self._pages("/v1/trainings", "listing trainings"):
            if until_id is not None and item.get("id") == until_id:
                break
            training = value_of(Training.from_api, item, 200, "training")
            if (
                created_after is not None
                and training.created_at is not None
                and training.created_at < created_after
            ):
                break
            trainings.append(training)
        return trainings

    def create_training(
        self,
        trainer: str,
        trainer_version: str,
        destination: str,
        training_input: Mapping[str, Any],
    ) -> Training:
        """Start a (paid) training into ``destination``.

        Never sent twice: it is resent only after a 429 or a failed connection, when
        Replicate cannot have started it; any failure after it may have been accepted
        raises ``CreateOutcomeUnknown`` (with ``created_id`` when known) so that the caller
        checks ``list_trainings`` first.
        """
        _check_model_id(trainer)
        _check_model_id(destination)
        if not is_version_hash(trainer_version):
            raise DataRejected(
                f"Trainer version must be a bare 64-hex id, not {trainer_version!r}."
            )
        create = partial(
            self._connection.client.trainings.create,
            model=trainer,
            version=trainer_version,
            input=dict(training_input),
            destination=destination,
        )
        return self._call(
            f"starting a training into {destination}",
            CallKind.PAID,
            partial(read, self._connection, Training.from_api, create, "training"),
        )

    def cancel_training(self, training_id: str) -> Training:
        """Cancel; safe to repeat (cancelling a finished training changes nothing)."""
        client = self._connection.client
        return self._call(
            f"cancelling training {training_id}",
            CallKind.SAFE,
            partial(
                read,
                self._connection,
                Training.from_api,
                partial(client.trainings.cancel, training_id),
                "training",
            ),
        )

    # -- predictions -----------------------------------------------------------------------
    def create_prediction(
        self, version_id: str, prediction_input: Mapping[str, Any], *, wait: bool | int = False
    ) -> Prediction:
        """Run a (paid) prediction on a bare version id; ``wait`` asks Replicate to hold the
        answer until done (True: up to 60 s, N: up to N s). A waited answer may still say
        ``processing`` (with some output already there): poll ``get_prediction``.

        Never sent twice: resent only after a 429 or a failed connection; any failure after
        it may have been accepted raises ``CreateOutcomeUnknown``.
        """
        if not is_version_hash(version_id):
            raise DataRejected(
                f"A prediction needs the bare 64-hex version id, not {version_id!r}."
            )
        create = partial(
            self._connection.client.predictions.create,
            version=version_id,
            input=dict(prediction_input),
            wait=wait,
        )
        return self._call(
            f"running version {version_id[:12]}",
            CallKind.PAID,
            partial(read, self._connection, Prediction.from_api, create, "prediction"),
            bucket=self._limits.prediction_creates,
        )

    def list_predictions(self, *, created_after: datetime) -> list[Prediction]:
        """The account's predictions created after ``created_after``, newest first (the
        pages are read until an older one appears): where a create whose answer was lost
        is looked for before anything is sent again."""
        found: list[Prediction] = []
        for item in self._pages("/v1/predictions", "listing predictions"):
            prediction = value_of(Prediction.from_api, item, 200, "prediction")
            if prediction.created_at is not None and prediction.created_at < created_after:
                break
            found.append(prediction)
        return found

    def get_prediction(self, prediction_id: str) -> Prediction:
        client = self._connection.client
        return self._call(
            f"reading prediction {prediction_id}",
            CallKind.SAFE,
            partial(
                read,
                self._connection,
                Prediction.from_api,
                partial(client.predictions.get, prediction_id),
                "prediction",
            ),
        )

    def cancel_prediction(self, prediction_id: str) -> Prediction:
        client = self._connection.client
        return self._call(
            f"cancelling prediction {prediction_id}",
            CallKind.SAFE,
            partial(
                read,
                self._connection,
                Prediction.from_api,
                partial(client.predictions.cancel, prediction_id),
                "prediction",
            ),
        )

    # -- files -----------------------------------------------------------------------------
    def upload_file(
        self,
        content: bytes,
        *,
        filename: str,
        content_type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> UploadedFile:
        """Upload through the files API. Resent only when it cannot have arrived; a failure
        after it may have been accepted raises ``CreateOutcomeUnknown``."""
        client = self._connection.client

        def upload() -> object:
            return client.files.create(
                io.BytesIO(content),
                filename=filename,
                content_type=content_type,
                metadata=dict(metadata or {}),
            )

        uploaded = self._call(
            f"uploading {filename}",
            CallKind.PAID,
            partial(read, self._connection, UploadedFile.from_api, upload, "file"),
        )
        if not uploaded.url:  # the answer had no urls.get: it is the file's own address
            uploaded = replace(uploaded, url=f"{self.base_url}/v1/files/{uploaded.id}")
        return uploaded

    def answers(self, url: str, *, deadline_seconds: float = ANSWER_DEADLINE_SECONDS) -> bool:
        """Whether the file at ``url`` (a stored output, a blob) still answers: one HEAD
        under ``download``'s policy (no token but to our own files, redirects at most 5
        and only to https, addresses checked first), within ``deadline_seconds``, not
        retried (a page asks). False for any refusal or failure; never raises."""
        try:
            target = parse_download_url(url)
            fetch(
                self._connection,
                target,
                max_bytes=0,
                deadline=Deadline.after(deadline_seconds),
                head=True,
            )
        except (DashboardError, ApiRefusal, httpx.HTTPError):
            return False
        return True

    def download(
        self, url: str, *, max_bytes: int, deadline_seconds: float = DOWNLOAD_DEADLINE_SECONDS
    ) -> bytes:
        """The bytes at ``url`` (a training ZIP, weights, an image), at most ``max_bytes``,
        all within ``deadline_seconds`` (retries included).

        A file of this Replicate's files API (``{base}/v1/files/{id}``) is read from its
        ``/download`` route with the token. Any other URL (the app's blob store,
        replicate.delivery) is read by a session that has no token at all. Redirects are
        followed at most 5 times, only to https (or, for a sandbox on loopback, to the
        sandbox itself). Size is checked while streaming, so a lying or missing
        ``Content-Length`` cannot run past the cap. 429, 5xx and network errors are
        retried. URLs in messages and logs never show credentials or a query.

        Permanent (``DataRejected``: the next scan would fail the same way): not an http(s)
        URL, or one no try can read (control characters, too long, a bad port, a host DNS
        or idna refuses, also where a redirect leads); larger than ``max_bytes``; a
        redirect to a refused host (not https), in a loop or more than 5; any other 4xx
        from a third party (not public); a TLS certificate refused or a host not speaking
        TLS; a body that does not decode on any try.
        Transient (``ReplicateUnavailable``: try again later): 404/410 (gone for now, or
        not visible yet); 5xx, 429, timeouts, connection errors and TLS handshakes cut
        short, after retries; the deadline passed; TLS failing with our own API's host.
        ``Unauthorized`` when Replicate refuses the token for its own file.
        """
        target = parse_download_url(url)
        shown = shown_url(target)
        own = own_file_path(self._connection, target) is not None
        deadline = Deadline.after(deadline_seconds)
        return call_with_retries(
            partial(fetch, self._connection, target, max_bytes=max_bytes, deadline=deadline),
            action=f"downloading {shown}",
            kind=CallKind.SAFE,
            policy=replace(
                self._policy, total_seconds=min(self._policy.total_seconds, deadline_seconds)
            ),
            before_attempt=self._limits.other_calls.acquire if own else _nothing,
            sleep=self._sleep,
            rng=self._rng,
            translator=partial(_download_failure, shown),
        )


def _nothing() -> None:
    return None


def _download_failure(
    shown: str, exc: Exception, action: str, kind: CallKind, *, now: float | None = None
) -> DashboardError:
    """A download's failure after retries, in the error tree. ``fetch`` already raised
    what no try can pass (a bad address, a refused certificate); this sorts the rest:

    - an address httpx will not send (InvalidURL, UnsupportedProtocol, LocalProtocolError)
      is permanent: the same string fails the same way on every scan;
    - a body that does not decode (its Content-Encoding does not match its bytes) is
      permanent: a body cut short fails on its framing (RemoteProtocolError), not here,
      and every retry got the same bytes;
    - everything else (5xx, 429, timeouts, refused connections, a TLS handshake cut
      short) may work later.
    """
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return unusable(shown, f"httpx will not send a request to it ({type(exc).__name__})")
    if isinstance(exc, httpx.DecodingError):
        return DataRejected(
            f"Cannot download {shown}: its host sends a body that cannot be decoded (the "
            "Content-Encoding it declares does not match the bytes), on every try. The file "
            "has to be stored again by whoever uploaded it."
        )
    status = exc.status if isinstance(exc, ApiRefusal) else None
    tls = ssl_cause(exc)
    cause = f"the TLS handshake failed: {tls.reason or type(tls).__name__}" if tls else None
    return ReplicateUnavailable(
        f"Could not download {shown} ({cause or describe(exc)}), even after retries. Nothing "
        "was changed; try again in a few minutes.",
        status=status,
    )


def _check_model_id(model_id: str) -> None:
    parts = model_id.split("/") if isinstance(model_id, str) else []
    if len(parts) != 2 or not all(part.strip() == part and part for part in parts):
        raise DataRejected(f"{model_id!r} is not a Replicate model id of the form owner/name.")
