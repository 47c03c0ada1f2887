"""The sandbox's behaviour model, independent of HTTP.

It answers what Replicate would for models, versions, trainings, predictions and files,
and models the SSELFIE app's failure modes: a succeeded training adds a new version to
its destination and remembers the dataset it read; a prediction renders an image from
that dataset, softer for poor datasets, without likeness when the prompt lacks the
trained trigger word, degraded when ``hf_lora`` names other weights. Like Replicate, it
reads only the inputs a version's schema declares; the rest are echoed and ignored.

Why one long module: a test double of Replicate's behaviour (models, versions, trainings,
predictions, files) and of the app's failure modes, not the domain; the state it keeps is
shared by every route.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import tarfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import DataRejected
from core.sandbox import catalog
from core.sandbox.dataset import DatasetProfile, read_training_zip
from core.sandbox.lifecycle import TERMINAL, iso, step_prediction, step_training
from core.sandbox.render import RenderRequest, render_prediction
from core.sandbox.store import BASE, Doc, Store

HEX64 = re.compile(r"[0-9a-f]{64}")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_FILE_BYTES = 100 * 1024 * 1024
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # Replicate's ids until 2024 (base32)
_CURRENT_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # since: Crockford's base32
ID_STYLES = ("legacy", "current")


class Problem(Exception):
    """An RFC 7807 answer: the HTTP layer sends it as ``application/problem+json``."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"title": title, "detail": detail, "status": status, **extra}


def split_version_ref(ref: Any) -> tuple[str, str] | None:
    """(model key or "", version id) of a bare 64-hex id or ``owner/name:id``; None for
    anything else. Replicate's version ids are lowercase."""
    model_key, _, version_id = str(ref or "").rpartition(":")
    if not HEX64.fullmatch(version_id):  # not match(): "$" lets a final newline through
        return None
    if model_key and not re.fullmatch(r"[^/:\s]+/[^/:\s]+", model_key):
        return None
    return model_key, version_id


def new_id(style: str = "legacy") -> str:
    """A Replicate-style job id: 26 lowercase characters, ``legacy`` (a-z, 2-7, as in
    "heat2o3bzn3ahtr6bjfftvbaci") or ``current`` (Crockford's base32, as in
    "pw050dtb51rj40cjb2vrcw97b8")."""
    alphabet = _CURRENT_ID_ALPHABET if style == "current" else _ID_ALPHABET
    return "".join(secrets.choice(alphabet) for _ in range(26))


def new_file_id(style: str = "legacy") -> str:
    """A files-API id: ``current`` ones are the base64 of a UUID, 48 characters of mixed
    case ("NGZiNmY2YzQtMThhZi00ZjcyLWFhZjktODg4NTY0NWNlMDEy")."""
    if style == "current":
        return base64.b64encode(str(uuid.uuid4()).encode()).decode()
    return new_id(style)


@dataclass
class SandboxConfig:
    """Knobs of the behaviour model; changed at run time through ``/_sandbox/config``."""

    account: str = "sandrasocial"
    training_start_seconds: float = 1.0
    training_seconds: float = 20.0
    prediction_seconds: float = 2.0
    page_size: int = 100
    fetch_timeout_seconds: float = 20.0
    id_style: str = "legacy"  # of new trainings, predictions and files: see new_id

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise Problem(400, "Unknown setting", f"{key!r} is not a sandbox setting")
            current = getattr(self, key)
            setattr(self, key, type(current)(value))
        if self.page_size < 1:
            raise Problem(400, "Bad setting", "page_size must be at least 1")
        if self.id_style not in ID_STYLES:
            self.id_style = "legacy"
            raise Problem(400, "Bad setting", f"id_style must be one of {', '.join(ID_STYLES)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Page:
    results: list[Doc]
    next_cursor: str | None


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _seq_from_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.removeprefix("seq:"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Invalid cursor", "The cursor is not one this API issued") from exc


@dataclass
class Sandbox:
    """State plus behaviour. Thread-safe: the store serialises access, and each job's
    finish is claimed by exactly one thread."""

    data_dir: Path
    config: SandboxConfig = field(default_factory=SandboxConfig)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.store = Store(self.data_dir)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._planned_outcomes: list[dict[str, Any]] = []
        self._plans_lock = threading.Lock()
        self._finishing: set[str] = set()
        self._finishing_lock = threading.Lock()
        # Replicate's GPUs do a prediction's work while it runs, not on our CPU at its end:
        # a timed prediction's images are drawn during its wait, one at a time.
        self._renders: dict[str, Future[tuple[int, list[tuple[str, bytes]]] | str]] = {}
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._seed_catalog()

    # -- bookkeeping --------------------------------------------------------------------
    def count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _seed_catalog(self) -> None:
        """The trainers exist in every sandbox, with stable version ids."""
        for key, version_id, description, training_input in catalog.BUILTIN_TRAINERS:
            if self.store.get_model(key) is not None:
                continue
            owner, name = key.split("/")
            self.store.put_model(key, _model_doc(owner, name, "public", description, official=True))
            self.store.put_version(
                key,
                {
                    "id": version_id,
                    "created_at": "2024-08-14T16:42:11.214337Z",
                    "cog_version": catalog.COG_VERSION,
                    "openapi_schema": catalog.trainer_schema(training_input),
                },
                {"kind": "trainer"},
            )

    def reset(self) -> None:
        self.store.wipe()
        self._planned_outcomes.clear()
        self.config.id_style = "legacy"  # a shape of answers, like the rules reset clears
        with self._stats_lock:
            self.stats.clear()
        self._seed_catalog()

    def save_snapshot(self, name: str) -> None:
        self.store.save_snapshot(name)

    def restore_snapshot(self, name: str) -> None:
        """The state saved under ``name``, with nothing planned and nothing counted."""
        self.store.restore_snapshot(name)
        self._planned_outcomes.clear()
        with self._stats_lock:
            self.stats.clear()

    # -- models and versions ----------------------------------------------------------
    def get_model(self, key: str) -> Doc:
        self.tick()
        doc = self.store.get_model(key)
        if doc is None:
            raise Problem(404, "Not found", "Not found.")
        latest = self.store.latest_version(key)
        return {**doc, "latest_version": latest[0] if latest else None}

    def create_model(self, body: Doc) -> Doc:
        owner, name = str(body.get("owner") or ""), str(body.get("name") or "")
        visibility, hardware = body.get("visibility"), body.get("hardware")
        problems = []
        if not owner:
            problems.append("owner is required")
        if not MODEL_NAME.match(name):
            problems.append("name must be lowercase letters, digits, dashes, dots or underscores")
        if visibility not in ("public", "private"):
            problems.append("visibility must be 'public' or 'private'")
        if not hardware:
            problems.append("hardware is required")
        if problems:
            raise Problem(422, "Invalid model", "; ".join(problems))
        if owner != self.config.account:
            raise Problem(
                403, "Forbidden", f"You do not have permission to create models for {owner!r}"
            )
        key = f"{owner}/{name}"
        if self.store.get_model(key) is not None:
            raise Problem(409, "Conflict", "A model with that name and owner already exists.")
        doc = _model_doc(owner, name, str(visibility), body.get("description"))
        self.store.put_model(key, doc)
        self.count("models.create")
        return {**doc, "latest_version": None}

    def delete_model(self, key: str) -> None:
        self._own_model(key)
        if self.store.count_versions(key):
            raise Problem(
                409,
                "Conflict",
                "A model with versions cannot be deleted: delete its versions first.",
            )
        self.store.delete_model(key)

    def _own_model(self, key: str) -> Doc:
        doc = self.store.get_model(key)
        if doc is None:
            raise Problem(404, "Not found", "Not found.")
        if doc["owner"] != self.config.account:
            raise Problem(403, "Forbidden", "You can only change models you own.")
        return doc

    def list_versions(self, key: str, cursor: str | None) -> Page:
        self.tick()
        if self.store.get_model(key) is None:
            raise Problem(404, "Not found", "Not found.")
        rows = self.store.versions_page(key, _seq_from_cursor(cursor), self.config.page_size)
        return _page(rows, self.config.page_size)

    def get_version(self, key: str, version_id: str) -> Doc:
        found = self.store.get_version(version_id)
        if found is None or found[0] != key:
            raise Problem(404, "Not found", "Not found.")
        return found[1]

    def delete_version(self, key: str, version_id: str) -> None:
        self._own_model(key)
        self.get_version(key, version_id)
        self.store.delete_version(version_id)

    def drop_inputs(self, version_id: str, names: list[str]) -> Doc:
        """Make a stored version declare fewer inputs, as an older version of a model may:
        from then on Replicate ignores them on it. Dropping one again changes nothing."""
        with self.store.transaction():
            _, doc, extra = self._stored_version(version_id)
            component = catalog.input_component(extra.get("kind"))
            declared = doc["openapi_schema"]["components"]["schemas"][component]["properties"]
            dropped: list[str] = list(extra.get("dropped_inputs") or [])
            never_declared = sorted({name for name in names if name not in declared} - set(dropped))
            if never_declared:
                raise Problem(
                    400,
                    "Bad schema change",
                    f"not an input of this version ({component}): {', '.join(never_declared)}",
                )
            doc["openapi_schema"] = catalog.without_inputs(doc["openapi_schema"], component, names)
            extra["dropped_inputs"] = dropped + [
                name for name in dict.fromkeys(names) if name not in dropped
            ]
            self.store.replace_version(version_id, doc, extra)
        return self.input_schema(version_id)

    def input_schema(self, version_id: str) -> Doc:
        """What a version declares and what was dropped from it (the control API's view)."""
        model_key, doc, extra = self._stored_version(version_id)
        component = catalog.input_component(extra.get("kind"))
        schema = doc["openapi_schema"]["components"]["schemas"][component]
        return {
            "version": version_id,
            "model": model_key,
            "component": component,
            "inputs": sorted(schema.get("properties", {})),
            "required": list(schema.get("required", [])),
            "dropped_inputs": list(extra.get("dropped_inputs") or []),
        }

    def _stored_version(self, version_id: str) -> tuple[str, Doc, Doc]:
        found = self.store.get_version(version_id)
        if found is None:
            raise Problem(404, "Not found", f"No version {version_id!r} in the sandbox.")
        return found

    # -- trainings ----------------------------------------------------------------------
    def plan_next_training(self, kind: str, error: str | None, destination: object = None) -> None:
        """Make the next created training fail (with ``error``) or be aborted; with a
        ``destination`` (``owner/name``), the next one into that model only, so a demo or a
        test can fail its own training while others are created beside it."""
        if kind not in ("fail", "abort"):
            raise Problem(400, "Bad outcome", "outcome must be 'fail' or 'abort'")
        if destination is not None and not (
            isinstance(destination, str) and re.fullmatch(r"[^/\s]+/[^/\s]+", destination)
        ):
            raise Problem(400, "Bad outcome", "destination must be a model's owner/name")
        with self._plans_lock:
            self._planned_outcomes.append(
                {
                    "kind": kind,
                    "error": error or "CUDA out of memory. Tried to allocate 2.00 GiB",
                    "destination": destination,
                }
            )

    def _take_planned_outcome(self, destination: str) -> dict[str, Any] | None:
        """The first planned outcome for a training into ``destination`` (one planned for
        any destination, or for this one), taken off the list."""
        with self._plans_lock:
            for index, planned in enumerate(self._planned_outcomes):
                if planned.get("destination") in (None, destination):
                    return self._planned_outcomes.pop(index)
        return None

    def create_training(self, trainer_key: str, trainer_version: str, body: Doc) -> Doc:
        if self.store.get_model(trainer_key) is None:
            raise Problem(404, "Not found", "Not found.")
        found = self.store.get_version(trainer_version)
        if found is None or found[0] != trainer_key:
            raise _invalid_version()
        if found[2].get("kind") != "trainer":
            raise Problem(422, "Training not supported", "This version cannot be trained.")
        destination = str(body.get("destination") or "")
        dest_model = self.store.get_model(destination) if "/" in destination else None
        if dest_model is None or dest_model["owner"] != self.config.account:
            raise Problem(404, "Not found", "The specified training destination does not exist")
        training_input = body.get("input") or {}
        if not isinstance(training_input, dict):
            raise Problem(422, "Input validation failed", "- input: must be an object\n")
        schema = found[1]["openapi_schema"]["components"]["schemas"]["TrainingInput"]
        _raise_if_invalid(catalog.validate_input(schema, training_input))
        # The input is echoed as sent, but the trainer only ever sees what it declares.
        declared = catalog.declared_inputs(schema, training_input)

        outcome = self._take_planned_outcome(destination)
        dataset_id = None
        try:
            dataset_id = self._load_dataset(str(declared.get("input_images") or ""))
        except DataRejected as exc:
            outcome = outcome or {"kind": "fail", "error": str(exc)}

        created = self.clock()
        start_at = created + self.config.training_start_seconds
        training_id = new_id(self.config.id_style)
        doc: Doc = {
            "id": training_id,
            "model": trainer_key,
            "version": trainer_version,
            "input": training_input,
            "output": None,
            "logs": "",
            "error": None,
            "status": "starting",
            "metrics": {},
            "source": "api",
            "created_at": iso(created),
            "started_at": None,
            "completed_at": None,
            "urls": _job_urls("trainings", training_id),
        }
        extra = {
            "destination": destination,
            "created": created,
            "start_at": start_at,
            "done_at": start_at + self.config.training_seconds,
            "outcome": outcome,
            "dataset_id": dataset_id,
            "steps": declared.get("steps") or declared.get("training_steps") or 1000,
            "trigger_word": str(declared.get("trigger_word") or "TOK"),
        }
        self.store.put_job("training", doc, extra, active=True)
        self.count("trainings.create")
        return doc

    def get_training(self, training_id: str) -> Doc:
        return self._advance("training", training_id)

    def list_trainings(self, cursor: str | None) -> Page:
        self.tick()
        rows = self.store.jobs_page("training", _seq_from_cursor(cursor), self.config.page_size)
        return _page(rows, self.config.page_size)

    def cancel_training(self, training_id: str) -> Doc:
        return self._cancel("training", training_id)

    def finish_trainings_now(self) -> list[str]:
        """Bring every running training to its planned end at once."""
        finished = []
        at = self.clock()
        for kind, job_id in self.store.active_job_ids():
            if kind != "training":
                continue
            with self.store.transaction():
                found = self.store.get_job(kind, job_id)
                if found is None:
                    continue
                doc, extra = found
                extra["start_at"] = min(extra["start_at"], at)
                extra["done_at"] = min(extra["done_at"], at)
                self.store.put_job(kind, doc, extra, active=True)
            finished.append(job_id)
            self._advance(kind, job_id)
        return finished

    def _finish_training(self, doc: Doc, extra: Doc, status: str, at: float) -> None:
        doc["completed_at"] = iso(at)
        doc["metrics"] = {
            "predict_time": round(at - extra["start_at"], 3),
            "total_time": round(at - extra["created"], 3),
        }
        if status != "succeeded":
            return
        destination = extra["destination"]
        if self.store.get_model(destination) is None:
            doc["status"], doc["error"] = "failed", "The destination model no longer exists."
            return
        version_id = hashlib.sha256(f"{doc['id']}:{destination}".encode()).hexdigest()
        token = new_id()
        weights_path = f"/delivery/{token}/trained_model.tar"
        self._write_delivery(token, "trained_model.tar", _weights_tar(version_id, destination))
        # Trainings stored before the trigger word was kept in extra read it from the input.
        trigger = str(extra.get("trigger_word") or doc["input"].get("trigger_word") or "TOK")
        self.store.put_version(
            destination,
            {
                "id": version_id,
                "created_at": iso(at),
                "cog_version": catalog.COG_VERSION,
                "openapi_schema": catalog.lora_version_schema(),
            },
            {
                "kind": "lora",
                "dataset_id": extra.get("dataset_id"),
                "trigger_word": trigger,
                "weights_path": weights_path,
                "training_id": doc["id"],
            },
        )
        doc["output"] = {"version": f"{destination}:{version_id}", "weights": BASE + weights_path}

    # -- predictions --------------------------------------------------------------------
    def create_prediction(self, body: Doc, wait_seconds: float | None) -> tuple[Doc, bool]:
        """The new prediction and whether it finished inside the ``Prefer: wait`` window."""
        version_id, model_key = self._resolve_version(body.get("version"))
        found = self.store.get_version(version_id)
        assert found is not None
        prediction_input = body.get("input")
        if not isinstance(prediction_input, dict):
            raise Problem(
                422,
                "Input validation failed",
                "- input: input is required\n",
                invalid_fields=[
                    {"type": "required", "field": "input", "description": "input is required"}
                ],
            )
        schema = found[1]["openapi_schema"]["components"]["schemas"]["Input"]
        _raise_if_invalid(catalog.validate_input(schema, prediction_input))
        # Fixed now: a later schema change does not reach a prediction already created.
        render_input = catalog.declared_inputs(schema, prediction_input)
        created = self.clock()
        prediction_id = new_id(self.config.id_style)
        doc: Doc = {
            "id": prediction_id,
            "model": model_key,
            "version": version_id,
            "input": prediction_input,
            "output": None,
            "logs": "",
            "error": None,
            "status": "starting",
            "metrics": {},
            "source": "api",
            "data_removed": False,
            "created_at": iso(created),
            "started_at": None,
            "completed_at": None,
            "urls": _job_urls("predictions", prediction_id),
        }
        extra = {
            "created": created,
            "start_at": created,
            "done_at": created + self.config.prediction_seconds,
            "render_input": render_input,
        }
        self.store.put_job("prediction", doc, extra, active=True)
        self.count("predictions.create")
        if self.config.prediction_seconds > 0:
            self._renders[prediction_id] = self._render_pool.submit(
                self._render_outputs, version_id, render_input
            )
        doc = self._advance("prediction", prediction_id)
        if wait_seconds:
            deadline = time.monotonic() + wait_seconds
            while doc["status"] not in TERMINAL and time.monotonic() < deadline:
                time.sleep(0.05)
                doc = self._advance("prediction", prediction_id)
        return doc, doc["status"] in TERMINAL

    def get_prediction(self, prediction_id: str) -> Doc:
        return self._advance("prediction", prediction_id)

    def list_predictions(self, cursor: str | None) -> Page:
        rows = self.store.jobs_page("prediction", _seq_from_cursor(cursor), self.config.page_size)
        return _page(rows, self.config.page_size)

    def cancel_prediction(self, prediction_id: str) -> Doc:
        return self._cancel("prediction", prediction_id)

    def _resolve_version(self, ref: Any) -> tuple[str, str]:
        """(version id, model key) for a bare 64-hex id or ``owner/name:id``."""
        parts = split_version_ref(ref)
        found = self.store.get_version(parts[1]) if parts else None
        if parts is None or found is None or (parts[0] and parts[0] != found[0]):
            raise _invalid_version()
        return parts[1], found[0]

    def _finish_prediction(self, doc: Doc, extra: Doc, at: float) -> None:
        future = self._renders.pop(doc["id"], None)
        if future is not None:
            rendered = future.result()
        else:  # predictions stored before render_input was kept render from their input
            given: Doc = extra["render_input"] if "render_input" in extra else doc["input"]
            rendered = self._render_outputs(doc["version"], given)
        if isinstance(rendered, str):
            doc["status"], doc["error"] = "failed", rendered
            return
        seed, images = rendered
        urls = []
        for name, image in images:
            self._write_delivery(doc["id"], name, image)
            urls.append(f"{BASE}/delivery/{doc['id']}/{name}")
        doc["output"] = urls
        doc["logs"] += f"Using seed: {seed}\n"
        doc["completed_at"] = iso(at)
        doc["metrics"] = {
            "predict_time": round(at - doc_time(doc), 3),
            "total_time": round(at - doc_time(doc), 3),
        }

    def _render_outputs(
        self, version_id: str, given: Doc
    ) -> tuple[int, list[tuple[str, bytes]]] | str:
        """The seed and image files of a prediction of ``version_id`` with the inputs it
        declares (``given``), or why it cannot have any."""
        found = self.store.get_version(version_id)
        if found is None or found[2].get("kind") != "lora":
            return "This version cannot generate images."
        _, _, version_extra = found
        dataset = self.store.get_dataset(version_extra.get("dataset_id") or "")
        if dataset is None:
            return "The version's weights could not be loaded."
        profile = DatasetProfile.from_dict(dataset[0])
        photos = self._dataset_photos(version_extra["dataset_id"], dataset[1])
        seed = given.get("seed")
        if not isinstance(seed, int):
            seed = int(hashlib.sha256(repr(sorted(given.items())).encode()).hexdigest()[:8], 16)
        fmt = {"jpeg": "jpg"}.get(
            str(given.get("output_format") or "webp"), str(given.get("output_format") or "webp")
        )
        fmt = fmt if fmt in ("png", "jpg", "webp") else "png"
        images = []
        for index in range(int(given.get("num_outputs") or 1)):
            image = render_prediction(
                photos,
                profile,
                RenderRequest(
                    prompt=str(given.get("prompt") or ""),
                    seed=seed + index,
                    aspect_ratio=str(given.get("aspect_ratio") or "1:1"),
                    megapixels=str(given.get("megapixels") or "1"),
                    output_format=fmt,
                    likeness=_mentions(
                        str(given.get("prompt") or ""), version_extra["trigger_word"]
                    ),
                    lora_matches=_lora_matches(
                        given.get("hf_lora"),
                        found[0],
                        version_id,
                        version_extra["weights_path"],
                    ),
                ),
            )
            images.append((f"out-{index}.{fmt}", image))
        return seed, images

    # -- shared job machinery -----------------------------------------------------------
    def tick(self) -> None:
        """Advance every job that is still running (called by the clock thread and reads)."""
        for kind, job_id in self.store.active_job_ids():
            self._advance(kind, job_id)

    def _advance(self, kind: str, job_id: str) -> Doc:
        at = self.clock()
        with self.store.transaction():
            found = self.store.get_job(kind, job_id)
            if found is None:
                raise Problem(404, "Not found", "Not found.")
            doc, extra = found
            stepper = step_training if kind == "training" else step_prediction
            step = stepper(doc, extra, at)
            if step is None:
                return doc
            if not step.finishing:
                doc["status"], doc["logs"] = step.status, step.logs
                doc["started_at"] = doc["started_at"] or iso(at)
                self.store.put_job(kind, doc, extra, active=True)
                return doc
        # Finishing may render images or write weights: claim it, then work unlocked.
        with self._finishing_lock:
            if job_id in self._finishing:
                return doc
            self._finishing.add(job_id)
        try:
            doc["status"], doc["logs"], doc["error"] = step.status, step.logs, step.error
            if step.status != "aborted":
                doc["started_at"] = doc["started_at"] or iso(at)
            if kind == "training":
                self._finish_training(doc, extra, step.status, at)
            elif step.status == "succeeded":
                self._finish_prediction(doc, extra, at)
            else:
                self._renders.pop(job_id, None)  # failed or aborted: its images are not needed
            with self.store.transaction():
                current = self.store.get_job(kind, job_id)
                if current and current[0]["status"] not in TERMINAL:
                    self.store.put_job(kind, doc, extra, active=False)
                else:
                    doc = current[0] if current else doc
        finally:
            with self._finishing_lock:
                self._finishing.discard(job_id)
        return doc

    def _cancel(self, kind: str, job_id: str) -> Doc:
        at = self.clock()
        with self.store.transaction():
            found = self.store.get_job(kind, job_id)
            if found is None:
                raise Problem(404, "Not found", "Not found.")
            doc, extra = found
            if doc["status"] not in TERMINAL and job_id not in self._finishing:
                doc["status"], doc["completed_at"] = "canceled", iso(at)
                self.store.put_job(kind, doc, extra, active=False)
                future = self._renders.pop(job_id, None)
                if future is not None:
                    future.cancel()
        return doc

    # -- files, blobs, downloads ----------------------------------------------------------
    def create_file(self, name: str, content_type: str, content: bytes, metadata: Doc) -> Doc:
        if len(content) > MAX_FILE_BYTES:
            raise Problem(413, "Payload too large", "Files may be at most 100 MB.")
        file_id = new_file_id(self.config.id_style)
        (self.data_dir / "files" / file_id).write_bytes(content)
        created = self.clock()
        md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
        doc = {
            "id": file_id,
            "name": name,
            "content_type": content_type,
            "size": len(content),
            "etag": md5,
            "checksums": {"sha256": hashlib.sha256(content).hexdigest(), "md5": md5},
            "metadata": metadata,
            "created_at": iso(created),
            "expires_at": iso(created + 24 * 3600),
            "urls": {"get": f"{BASE}/v1/files/{file_id}"},
        }
        self.store.put_file(doc)
        self.count("files.create")
        return doc

    def get_file(self, file_id: str) -> Doc:
        doc = self.store.get_file(file_id)
        if doc is None:
            raise Problem(404, "Not found", "Not found.")
        return doc

    def file_content(self, file_id: str) -> tuple[bytes, str]:
        doc = self.get_file(file_id)
        return (self.data_dir / "files" / file_id).read_bytes(), str(doc["content_type"])

    def delete_file(self, file_id: str) -> None:
        self.get_file(file_id)
        self.store.delete_file(file_id)
        (self.data_dir / "files" / file_id).unlink(missing_ok=True)

    def put_blob(self, path: str, content: bytes, content_type: str) -> str:
        """Store a public blob (the stand-in for the app's Vercel Blob); returns its path."""
        clean = _safe_relative(path)
        target = self.data_dir / "blobs" / clean
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.store.put_blob(clean, content_type, len(content))
        return f"/_blob/{clean}"

    def get_blob(self, path: str) -> tuple[bytes, str]:
        clean = _safe_relative(path)
        content_type = self.store.get_blob(clean)
        if content_type is None:
            raise Problem(404, "Not found", "No blob at that path.")
        return (self.data_dir / "blobs" / clean).read_bytes(), content_type

    def get_delivery(self, token: str, name: str) -> bytes:
        target = self.data_dir / "delivery" / _safe_relative(token) / _safe_relative(name)
        if not target.is_file():
            raise Problem(404, "Not found", "Not found.")
        return target.read_bytes()

    def _write_delivery(self, token: str, name: str, content: bytes) -> None:
        folder = self.data_dir / "delivery" / token
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)

    # -- datasets -------------------------------------------------------------------------
    def _load_dataset(self, url: str) -> str:
        """Read the training ZIP at ``url`` once; its content hash names the dataset."""
        content = self._fetch(url)
        dataset_id = hashlib.sha256(content).hexdigest()
        if self.store.get_dataset(dataset_id) is None:
            profile, photos = read_training_zip(content)
            folder = self.data_dir / "datasets" / dataset_id
            folder.mkdir(parents=True, exist_ok=True)
            for index, photo in enumerate(photos):
                (folder / f"{index:04d}.jpg").write_bytes(photo)
            self.store.put_dataset(dataset_id, profile.to_dict(), len(photos))
        return dataset_id

    def _dataset_photos(self, dataset_id: str, count: int) -> list[bytes]:
        folder = self.data_dir / "datasets" / dataset_id
        return [(folder / f"{index:04d}.jpg").read_bytes() for index in range(count)]

    def _fetch(self, url: str) -> bytes:
        """The bytes at ``url``: read locally when it is one of ours, else over HTTP."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise DataRejected(f"input_images must be an http(s) URL, not {url[:60]!r}")
        local = self._local_content(parts.path)
        if local is not None:
            return local
        try:
            response = httpx.get(
                url, timeout=self.config.fetch_timeout_seconds, follow_redirects=True
            )
        except httpx.HTTPError as exc:
            raise DataRejected(f"Failed to download input_images: {exc}") from exc
        if response.status_code != 200:
            raise DataRejected(f"Failed to download input_images: HTTP {response.status_code}")
        if len(response.content) > MAX_FILE_BYTES:
            raise DataRejected("input_images is larger than 100 MB")
        return response.content

    def _local_content(self, path: str) -> bytes | None:
        try:
            if match := re.fullmatch(r"/v1/files/([A-Za-z0-9_-]+)(/download)?", path):
                return self.file_content(match.group(1))[0]
            if path.startswith("/_blob/"):
                return self.get_blob(path.removeprefix("/_blob/"))[0]
            if match := re.fullmatch(r"/delivery/([^/]+)/([^/]+)", path):
                return self.get_delivery(match.group(1), match.group(2))
        except Problem:
            return None
        return None


# -- small helpers --------------------------------------------------------------------------
def doc_time(doc: Doc) -> float:
    return datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00")).timestamp()


def _model_doc(
    owner: str, name: str, visibility: str, description: Any, *, official: bool = False
) -> Doc:
    return {
        "url": f"https://replicate.com/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": description,
        "visibility": visibility,
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "is_official": official,
    }


def _job_urls(collection: str, job_id: str) -> Doc:
    return {
        "get": f"{BASE}/v1/{collection}/{job_id}",
        "cancel": f"{BASE}/v1/{collection}/{job_id}/cancel",
        "web": f"https://replicate.com/p/{job_id}",
    }


def _page(rows: list[tuple[int, Doc]], limit: int) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([doc for _, doc in rows], _cursor(rows[-1][0]) if more else None)


def _invalid_version() -> Problem:
    return Problem(
        422,
        "Invalid version or not permitted",
        "The specified version does not exist (or perhaps you don't have permission to use it?)",
    )


def _raise_if_invalid(problems: list[str]) -> None:
    if problems:
        raise Problem(
            422,
            "Input validation failed",
            "".join(f"- {line}\n" for line in problems),
            invalid_fields=[
                {
                    "type": "invalid",
                    "field": line.partition(":")[0],
                    "description": line.partition(":")[2].strip(),
                }
                for line in problems
            ],
        )


def _mentions(prompt: str, trigger_word: str) -> bool:
    """A LoRA only draws its subject when the prompt holds the trained token."""
    return re.search(rf"(?<![\w]){re.escape(trigger_word)}(?![\w])", prompt, re.I) is not None


def _lora_matches(hf_lora: Any, model_key: str, version_id: str, weights_path: str) -> bool:
    """No ``hf_lora`` runs the version's own weights; otherwise it must name them."""
    if not hf_lora:
        return True
    text = str(hf_lora).strip()
    if text in (f"{model_key}:{version_id}", version_id):
        return True
    return urlsplit(text).path == weights_path


def _safe_relative(path: str) -> str:
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise Problem(400, "Bad path", "The path must be relative and may not contain '..'")
    return "/".join(parts)


def _weights_tar(version_id: str, destination: str) -> bytes:
    """A small, deterministic stand-in for the trained LoRA archive."""
    payload = f'{{"version": "{version_id}", "model": "{destination}"}}\n'.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("output/flux_train_replicate/lora.safetensors.json")
        info.size, info.mtime = len(payload), 0
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()
