"""The one way the console talks to Replicate: the official client, injected.

``ReplicateGateway`` wraps a ``Client`` (pointed at api.replicate.com in LIVE,
at the sandbox in DEMO and tests) and gives back the project's own values
(``core.gateway.values``), its own errors (``core.errors``), shared rate limiting and
bounded retries. How each create avoids being sent twice is said on the method.
"""

from __future__ import annotations

import io
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

import httpx
import pydantic
import pydantic.v1
import replicate.client
import replicate.exceptions
from replicate.client import Client

from core.errors import (
    Conflict,
    DataRejected,
    RateLimited,
    ReplicateNotFound,
    ReplicateUnavailable,
)
from core.gateway.limits import Outcome, RateLimits, TokenBucket, map_bounded
from core.gateway.retry import CallKind, RetryPolicy, call_with_retries
from core.gateway.values import (
    ModelVersion,
    Prediction,
    ReplicateModel,
    Training,
    UploadedFile,
    is_version_hash,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0, read=20.0, write=30.0, pool=10.0)
# A file of the files API: ``urls.get`` is /v1/files/{id}, its bytes are at .../download.
_OWN_FILE_PATH = re.compile(r"^/v1/files/([A-Za-z0-9_-]+)(?:/download)?/?$")
_GONE_STATUSES = frozenset({404, 410})
_ParseErrors = (pydantic.ValidationError, pydantic.v1.ValidationError)


def build_client(
    api_token: str, base_url: str | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> Client:
    """A client for the gateway: explicit token and base URL, never read from globals."""
    return Client(api_token=api_token, base_url=base_url or None, timeout=timeout)


class ReplicateGateway:
    """Typed, rate-limited, retrying access to Replicate. Safe to share between threads."""

    def __init__(
        self,
        client: Client,
        *,
        limits: RateLimits | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._limits = limits or RateLimits()
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._retry_after = threading.local()
        self._take_over_retries()

    def _take_over_retries(self) -> None:
        """Make this gateway the only place that retries.

        replicate 1.0.7 wraps every transport in a ``RetryTransport`` that re-sends GETs
        on 429/503/504 up to 10 times and sleeps for any ``Retry-After`` without limit,
        which would break our time bound; and its errors drop the response headers. So
        the gateway builds the client's HTTP client now (it is created lazily and without
        a lock), turns its built-in retries off, and records ``Retry-After`` per thread.
        """
        http = self._client._client
        transport = getattr(http, "_transport", None)
        if isinstance(transport, replicate.client.RetryTransport):
            transport.max_attempts = 1

        def remember_retry_after(response: httpx.Response) -> None:
            self._retry_after.value = response.headers.get("retry-after")

        http.event_hooks = {
            "request": list(http.event_hooks.get("request", [])),
            "response": [*http.event_hooks.get("response", []), remember_retry_after],
        }

    def close(self) -> None:
        """Close the client's HTTP session (its keep-alive sockets). Idempotent."""
        self._client._client.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _call(
        self,
        action: str,
        kind: CallKind,
        attempt: Callable[[], T],
        bucket: TokenBucket | None = None,
    ) -> T:
        limiter = bucket or self._limits.other_calls

        def before() -> None:
            self._retry_after.value = None
            limiter.acquire()

        return call_with_retries(
            attempt,
            action=action,
            kind=kind,
            policy=self._policy,
            last_retry_after=lambda: getattr(self._retry_after, "value", None),
            before_attempt=before,
            sleep=self._sleep,
            rng=self._rng,
        )

    def _raw(self, path_or_url: str) -> Any:
        """GET through the client's own HTTP session (auth, base URL, timeouts) and return
        JSON. Used where the client's models cannot parse Replicate's answer (``aborted``)
        or cannot follow a cursor (versions)."""
        return self._client._request("GET", path_or_url).json()

    # -- models and versions -------------------------------------------------------------------
    def get_model(self, model_id: str) -> ReplicateModel | None:
        """The model, or None when Replicate answers 404."""
        _check_model_id(model_id)
        try:
            model = self._call(
                f"reading model {model_id}",
                CallKind.SAFE,
                lambda: self._client.models.get(model_id),
            )
        except ReplicateNotFound:
            return None
        return ReplicateModel.from_api(model.dict())

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
        versions: list[ModelVersion] = []
        url: str | None = f"/v1/models/{owner}/{name}/versions"
        while url is not None:
            page = self._call(
                f"listing versions of {model_id}", CallKind.SAFE, partial(self._raw, url)
            )
            versions += [ModelVersion.from_api(item) for item in page.get("results", [])]
            url = page.get("next")
        return versions

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
        try:
            model = self._call(
                f"creating model {model_id}",
                CallKind.SAFE,
                lambda: self._client.models.create(owner, name, **params),
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                existing = self.get_model(model_id)
                if existing is not None:
                    return existing
                raise Conflict(f"Model {model_id} exists but cannot be read.") from exc
            raise
        return ReplicateModel.from_api(model.dict())

    # -- trainings ---------------------------------------------------------------------------
    def get_training(self, training_id: str) -> Training:
        return self._call(
            f"reading training {training_id}", CallKind.SAFE, lambda: self._training(training_id)
        )

    def _training(self, training_id: str) -> Training:
        try:
            return Training.from_api(self._client.trainings.get(training_id).dict())
        except _ParseErrors:
            # replicate 1.0.7 cannot parse status "aborted"; it is a terminal failure.
            return Training.from_api(self._raw(f"/v1/trainings/{training_id}"))

    def list_trainings(self, *, until_id: str | None = None) -> list[Training]:
        """Account trainings, newest first: all pages, or down to (not including)
        ``until_id`` when it is given and found."""
        trainings: list[Training] = []
        url: str | None = "/v1/trainings"
        while url is not None:
            page = self._call("listing trainings", CallKind.SAFE, partial(self._raw, url))
            for item in page.get("results", []):
                if until_id is not None and item.get("id") == until_id:
                    return trainings
                trainings.append(Training.from_api(item))
            url = page.get("next")
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
        Replicate cannot have started it; any other failure raises
        ``CreateOutcomeUnknown`` so that the caller checks ``list_trainings`` first.
        """
        _check_model_id(trainer)
        _check_model_id(destination)
        if not is_version_hash(trainer_version):
            raise DataRejected(
                f"Trainer version must be a bare 64-hex id, not {trainer_version!r}."
            )
        return self._call(
            f"starting a training into {destination}",
            CallKind.PAID,
            lambda: Training.from_api(
                self._client.trainings.create(
                    model=trainer,
                    version=trainer_version,
                    input=dict(training_input),
                    destination=destination,
                ).dict()
            ),
        )

    def cancel_training(self, training_id: str) -> Training:
        """Cancel; safe to repeat (cancelling a finished training changes nothing)."""

        def cancel() -> Training:
            try:
                return Training.from_api(self._client.trainings.cancel(training_id).dict())
            except _ParseErrors:
                return Training.from_api(self._raw(f"/v1/trainings/{training_id}"))

        return self._call(f"cancelling training {training_id}", CallKind.SAFE, cancel)

    # -- predictions -----------------------------------------------------------------------
    def create_prediction(
        self, version_id: str, prediction_input: Mapping[str, Any], *, wait: bool | int = False
    ) -> Prediction:
        """Run a (paid) prediction on a bare version id; ``wait`` asks Replicate to hold the
        answer until done (True: up to 60 s, N: up to N s).

        Never sent twice: resent only after a 429 or a failed connection; any other failure
        raises ``CreateOutcomeUnknown``.
        """
        if not is_version_hash(version_id):
            raise DataRejected(
                f"A prediction needs the bare 64-hex version id, not {version_id!r}."
            )
        return self._call(
            f"running version {version_id[:12]}",
            CallKind.PAID,
            lambda: self._prediction_from(
                lambda: self._client.predictions.create(
                    version=version_id, input=dict(prediction_input), wait=wait
                )
            ),
            bucket=self._limits.prediction_creates,
        )

    def get_prediction(self, prediction_id: str) -> Prediction:
        return self._call(
            f"reading prediction {prediction_id}",
            CallKind.SAFE,
            lambda: self._prediction_from(
                lambda: self._client.predictions.get(prediction_id),
                f"/v1/predictions/{prediction_id}",
            ),
        )

    def cancel_prediction(self, prediction_id: str) -> Prediction:
        return self._call(
            f"cancelling prediction {prediction_id}",
            CallKind.SAFE,
            lambda: self._prediction_from(
                lambda: self._client.predictions.cancel(prediction_id),
                f"/v1/predictions/{prediction_id}",
            ),
        )

    def _prediction_from(self, fetch: Callable[[], Any], raw_path: str | None = None) -> Prediction:
        try:
            return Prediction.from_api(fetch().dict())
        except _ParseErrors:
            if raw_path is None:
                raise
            return Prediction.from_api(self._raw(raw_path))

    # -- files -----------------------------------------------------------------------------
    def upload_file(
        self,
        content: bytes,
        *,
        filename: str,
        content_type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> UploadedFile:
        """Upload through the files API. Resent only when it cannot have arrived."""
        return self._call(
            f"uploading {filename}",
            CallKind.PAID,
            lambda: UploadedFile.from_api(
                self._client.files.create(
                    io.BytesIO(content),
                    filename=filename,
                    content_type=content_type,
                    metadata=dict(metadata or {}),
                ).dict()
            ),
        )

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """The bytes at ``url`` (a training ZIP, weights, an image), at most ``max_bytes``.

        A file of this Replicate's files API (``{base}/v1/files/{id}``) is read from its
        ``/download`` route through the client's authenticated session. Any other URL
        (the app's blob store, replicate.delivery) is read with a plain GET that carries
        no ``Authorization`` header: the token never goes to a third party. The cap is
        enforced while streaming, so a lying or missing ``Content-Length`` cannot run
        past it. Retried like reads (429, 5xx, network errors).

        Raises ``DataRejected`` when the URL is not http(s), the file is gone (404/410)
        or refused (other 4xx from a third party), or larger than ``max_bytes``;
        ``Unauthorized`` when Replicate refuses the token for its own file;
        ``RateLimited``/``ReplicateUnavailable`` when retries did not help.
        """
        target = httpx.URL(url) if url.startswith(("http://", "https://")) else None
        if target is None or not target.host:
            raise DataRejected(f"Cannot download {url[:80]!r}: only http(s) URLs are read.")
        shown = _shown_url(target)
        own_path = self._own_file_download_path(target)
        if own_path is not None:
            return self._call(
                f"downloading {shown}",
                CallKind.SAFE,
                partial(self._download_own, own_path, shown, max_bytes),
            )
        try:
            return self._call(
                f"downloading {shown}",
                CallKind.SAFE,
                partial(self._download_public, target, shown, max_bytes),
            )
        except (ReplicateUnavailable, RateLimited) as exc:
            # translate() speaks of Replicate; this host is someone else's.
            raise ReplicateUnavailable(
                f"Could not download {shown} ({_cause(exc)}), even after retries. Nothing "
                "was changed; try again in a few minutes.",
                status=exc.status,
            ) from exc

    def _own_file_download_path(self, target: httpx.URL) -> str | None:
        """``/v1/files/{id}/download`` when ``target`` is a file under our base URL."""
        base = self._client._client.base_url
        if (target.scheme, target.host, _port(target)) != (base.scheme, base.host, _port(base)):
            return None
        prefix = base.path.rstrip("/")
        if not target.path.startswith(prefix):
            return None
        match = _OWN_FILE_PATH.match(target.path[len(prefix) :])
        return f"/v1/files/{match.group(1)}/download" if match else None

    def _download_own(self, path: str, shown: str, max_bytes: int) -> bytes:
        # httpx drops the Authorization header itself if a redirect leaves this origin.
        with self._client._client.stream("GET", path, follow_redirects=True) as response:
            return _read_capped(response, shown, max_bytes, third_party=False)

    def _download_public(self, target: httpx.URL, shown: str, max_bytes: int) -> bytes:
        timeout = self._client._client.timeout
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as plain,
            plain.stream("GET", target) as response,
        ):
            self._retry_after.value = response.headers.get("retry-after")
            return _read_capped(response, shown, max_bytes, third_party=True)


def _check_model_id(model_id: str) -> None:
    parts = model_id.split("/") if isinstance(model_id, str) else []
    if len(parts) != 2 or not all(part.strip() == part and part for part in parts):
        raise DataRejected(f"{model_id!r} is not a Replicate model id of the form owner/name.")


def _port(url: httpx.URL) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def _shown_url(url: httpx.URL) -> str:
    """The URL without its query (signed URLs carry secrets there), shortened for messages."""
    text = str(url.copy_with(query=None, fragment=None))
    return text if len(text) <= 120 else text[:117] + "..."


def _cause(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        return f"HTTP {status}"
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else "network error"


def _read_capped(
    response: httpx.Response, shown: str, max_bytes: int, *, third_party: bool
) -> bytes:
    """The body of a streamed response, refusing more than ``max_bytes``.

    Statuses worth retrying (and, for Replicate's own files, 401/403) are raised as the
    client's ``ReplicateError`` so the gateway's retry loop and translation handle them.
    """
    status = response.status_code
    if status in _GONE_STATUSES:
        raise DataRejected(
            f"{shown} is gone (HTTP {status}): the file was deleted or has expired, so its "
            "contents cannot be checked."
        )
    if third_party and 400 <= status < 500 and status != 429:
        raise DataRejected(f"{shown} refused the download (HTTP {status}); it is not public.")
    if status >= 400:
        raise replicate.exceptions.ReplicateError(
            status=status, detail=f"HTTP {status} while downloading {shown}"
        )
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise DataRejected(
            f"{shown} is {int(declared):,} bytes, more than the {max_bytes:,} allowed."
        )
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise DataRejected(f"{shown} is larger than the {max_bytes:,} bytes allowed.")
        chunks.append(chunk)
    return b"".join(chunks)
