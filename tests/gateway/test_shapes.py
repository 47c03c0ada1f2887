"""Every real answer shape the sandbox can give (``/_sandbox/shapes``, ``id_style``,
truncated answers, detail-only errors) through every gateway operation.

Each shape that breaks the plain ``replicate`` client is first shown to break it, then
read by the gateway into the project's values; whatever the gateway cannot read leaves
it as the project's own error, never the client's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from replicate.client import Client

from core.errors import (
    CreateOutcomeUnknown,
    DashboardError,
    InvalidVersion,
    ReplicateError,
    ReplicateNotFound,
    ReplicateUnavailable,
    Unauthorized,
)
from core.gateway.gateway import ReplicateGateway
from core.gateway.retry import RetryPolicy
from core.gateway.values import Prediction, Training
from core.sandbox.catalog import FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION
from tests.photos import selfie_zip
from tests.waits import until_ended, wait_for

MakeGateway = Callable[..., ReplicateGateway]
MODEL = "sandrasocial/shaped"
LEGACY_ID = re.compile(r"^[a-z2-7]{26}$")
CURRENT_ID = re.compile(r"^[0-9abcdefghjkmnpqrstvwxyz]{26}$")
FILE_ID = re.compile(r"^[A-Za-z0-9]{48}$")


@dataclass(frozen=True)
class Trained:
    zip_url: str
    training: Training

    @property
    def version(self) -> str:
        assert self.training.version_hash is not None
        return self.training.version_hash


def _shape(control: httpx.Client, shape: str, **rule: object) -> None:
    control.post("/shapes", json={"shape": shape, **rule}).raise_for_status()


def _finish(gateway: ReplicateGateway, training: Training) -> Training:
    return until_ended(lambda: gateway.get_training(training.id), what="the training")


def _train(gateway: ReplicateGateway, zip_url: str) -> Training:
    return gateway.create_training(
        FAST_FLUX_TRAINER,
        FAST_FLUX_TRAINER_VERSION,
        MODEL,
        {"input_images": zip_url, "trigger_word": "usershape"},
    )


@pytest.fixture
def trained(gateway: ReplicateGateway) -> Trained:
    gateway.create_model(MODEL)
    zip_url = gateway.upload_file(
        selfie_zip(5, long_side=300), filename="images.zip", content_type="application/zip"
    ).url
    return Trained(zip_url, _finish(gateway, _train(gateway, zip_url)))


def _slow(control: httpx.Client) -> None:
    control.post("/config", json={"training_seconds": 60, "prediction_seconds": 60})


# -- models ----------------------------------------------------------------------------------
CLIENT_BREAKING_MODEL_SHAPES = [
    "null_cog_version",
    "null_openapi_schema",
    "aborted_default_example",
    "no_run_count",
]


@pytest.mark.parametrize("shape", [*CLIENT_BREAKING_MODEL_SHAPES, "ms_timestamps", "ns_timestamps"])
def test_model_shapes_through_every_model_operation(
    gateway: ReplicateGateway,
    client: Client,
    control: httpx.Client,
    trained: Trained,
    shape: str,
) -> None:
    _shape(control, shape, id=MODEL)
    if shape in CLIENT_BREAKING_MODEL_SHAPES:
        with pytest.raises(ValueError):  # pydantic's ValidationError
            client.models.get(MODEL)
    model = gateway.get_model(MODEL)
    assert model is not None and model.key == MODEL
    assert model.latest_version is not None and model.latest_version.id == trained.version
    assert model.latest_version.created_at is not None
    outcomes = gateway.get_models([MODEL, FAST_FLUX_TRAINER, "sandrasocial/absent"])
    assert [outcome.error for outcome in outcomes] == [None, None, None]
    assert outcomes[0].value == model and outcomes[2].value is None
    assert [v.id for v in gateway.list_versions(MODEL)] == [trained.version]
    assert gateway.create_model(MODEL) == model  # 409: the existing model, read again
    # A rule for every model also shapes the answer to a create.
    _shape(control, shape)
    fresh = gateway.create_model("sandrasocial/fresh-shaped")
    assert fresh.key == "sandrasocial/fresh-shaped" and fresh.latest_version is None
    assert fresh.run_count == 0


# -- trainings -------------------------------------------------------------------------------
def test_a_bare_or_null_output_version_through_every_training_operation(
    gateway: ReplicateGateway, client: Client, control: httpx.Client, trained: Trained
) -> None:
    bare = _finish(gateway, _train(gateway, trained.zip_url))
    null = _finish(gateway, _train(gateway, trained.zip_url))
    _shape(control, "bare_output_version", id=bare.id)
    _shape(control, "null_output_version", id=null.id)
    with pytest.raises(ValueError):  # replicate 1.0.7: "Invalid reference to model version"
        client.trainings.get(bare.id)
    with pytest.raises(TypeError):  # replicate 1.0.7: re.match(None)
        client.trainings.get(null.id)
    for read in (gateway.get_training, gateway.cancel_training):
        got = read(bare.id)
        assert got.output_version == bare.version_hash and got.version_hash == bare.version_hash
        assert got.destination is None  # a bare hash does not say where it went
        got = read(null.id)
        assert got.status == "succeeded" and got.output_version is None
        assert got.version_hash is None
    listed = {t.id: t for t in gateway.list_trainings()}
    assert listed[bare.id].version_hash == bare.version_hash
    assert listed[null.id].output_version is None
    assert listed[trained.training.id].destination == MODEL
    assert [t.id for t in gateway.list_trainings(until_id=bare.id)] == [null.id]


@pytest.mark.parametrize("shape", ["hidden_version", "ms_timestamps", "ns_timestamps"])
def test_training_shapes_through_every_training_operation(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained, shape: str
) -> None:
    _shape(control, shape)  # every training, the create's own answer included
    created = _train(gateway, trained.zip_url)
    done = _finish(gateway, created)
    for training in (created, done, gateway.cancel_training(done.id), *gateway.list_trainings()):
        assert training.created_at is not None
        if shape == "hidden_version":
            assert training.trainer_version == "hidden"
        else:
            assert training.trainer_version == FAST_FLUX_TRAINER_VERSION
    assert done.status == "succeeded" and done.version_hash and done.destination == MODEL
    assert done.completed_at is not None and done.started_at is not None
    if shape == "ms_timestamps":
        assert done.completed_at.microsecond % 1000 == 0


def test_null_logs_while_processing_and_after_a_cancel(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained
) -> None:
    _shape(control, "null_logs")
    _slow(control)
    created = _train(gateway, trained.zip_url)
    assert created.logs == ""  # on create Replicate says ""
    running = wait_for(
        lambda: (
            found if (found := gateway.get_training(created.id)).status == "processing" else None
        ),
        timeout=10,
        what="the training to be processing",
        every=0.02,
    )
    assert running.logs is None
    canceled = gateway.cancel_training(created.id)
    assert canceled.status == "canceled" and canceled.logs is None
    assert [t.logs for t in gateway.list_trainings() if t.id == created.id] == [None]
    prediction = gateway.create_prediction(trained.version, {"prompt": "usershape"})
    assert gateway.get_prediction(prediction.id).logs is None  # processing
    stopped = gateway.cancel_prediction(prediction.id)
    assert stopped.status == "canceled" and stopped.logs is None


# -- predictions -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["hidden_version", "ms_timestamps", "ns_timestamps"])
def test_prediction_shapes_through_every_prediction_operation(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained, shape: str
) -> None:
    _shape(control, shape)
    waited = gateway.create_prediction(trained.version, {"prompt": "usershape"}, wait=True)
    queued = gateway.create_prediction(trained.version, {"prompt": "usershape"}, wait=False)
    for prediction in (
        waited,
        queued,
        gateway.get_prediction(waited.id),
        gateway.cancel_prediction(queued.id),
    ):
        assert prediction.created_at is not None
        assert prediction.version == ("hidden" if shape == "hidden_version" else trained.version)
    assert waited.status == "succeeded" and waited.output


def test_data_removed_after_its_age(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained
) -> None:
    done = gateway.create_prediction(trained.version, {"prompt": "usershape"}, wait=True)
    assert done.output and not done.data_removed
    assert gateway.download(done.output[0], max_bytes=10**7)
    _shape(control, "data_removed", id=done.id, after_seconds=3600)
    assert gateway.get_prediction(done.id).output == done.output  # not an hour old yet
    _shape(control, "data_removed", id=done.id, after_seconds=0)
    for prediction in (gateway.get_prediction(done.id), gateway.cancel_prediction(done.id)):
        assert prediction.status == "succeeded"
        assert prediction.data_removed and prediction.output == ()
    with pytest.raises(ReplicateUnavailable, match="HTTP 404"):  # its files are gone too
        gateway.download(done.output[0], max_bytes=10**7)


def test_a_waited_create_may_still_say_processing_with_output(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained
) -> None:
    _shape(control, "sync_processing")
    answered = gateway.create_prediction(trained.version, {"prompt": "usershape"}, wait=5)
    assert answered.status == "processing" and not answered.is_terminal
    assert answered.output  # partial output already there
    assert gateway.get_prediction(answered.id).status == "succeeded"
    queued = gateway.create_prediction(trained.version, {"prompt": "usershape"})
    assert queued.status == "succeeded"  # only waited answers are shaped so


# -- files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["no_name_etag", "ms_timestamps", "ns_timestamps"])
def test_file_shapes_through_upload_and_download(
    gateway: ReplicateGateway, client: Client, control: httpx.Client, shape: str
) -> None:
    _shape(control, shape)
    if shape == "no_name_etag":
        with pytest.raises(ValueError):  # replicate 1.0.7's File requires name and etag
            client.files.create(io.BytesIO(b"x"), filename="x.zip")
    uploaded = gateway.upload_file(b"PK\x05\x06" + bytes(18), filename="a.zip", content_type="z")
    assert uploaded.name == ("" if shape == "no_name_etag" else "a.zip")
    assert uploaded.size == 22 and uploaded.sha256
    assert gateway.download(uploaded.url, max_bytes=100) == b"PK\x05\x06" + bytes(18)


# -- ids -------------------------------------------------------------------------------------
def test_ids_of_the_current_alphabet_through_every_operation(
    gateway: ReplicateGateway, control: httpx.Client
) -> None:
    gateway.create_model(MODEL)
    legacy = gateway.upload_file(b"x", filename="x.zip", content_type="application/zip")
    assert LEGACY_ID.match(legacy.id)
    control.post("/config", json={"id_style": "current"}).raise_for_status()
    zip_bytes = selfie_zip(5, long_side=300)
    uploaded = gateway.upload_file(zip_bytes, filename="i.zip", content_type="application/zip")
    assert FILE_ID.match(uploaded.id) and uploaded.id != uploaded.id.lower()
    assert gateway.download(uploaded.url, max_bytes=10**7) == zip_bytes
    training = _finish(gateway, _train(gateway, uploaded.url))
    assert CURRENT_ID.match(training.id) and training.status == "succeeded"
    assert gateway.cancel_training(training.id).id == training.id
    assert [t.id for t in gateway.list_trainings()] == [training.id]
    assert training.version_hash is not None
    prediction = gateway.create_prediction(training.version_hash, {"prompt": "usershape"})
    assert CURRENT_ID.match(prediction.id)
    assert gateway.get_prediction(prediction.id).id == prediction.id
    assert gateway.cancel_prediction(prediction.id).id == prediction.id
    counts = control.get("/stats").json()["counts"]
    assert counts["GET /v1/trainings/{id}"] >= 1 and counts["GET /v1/files/{id}/download"] == 1
    assert control.post("/config", json={"id_style": "uuid"}).status_code == 400


# -- answers cut short -----------------------------------------------------------------------
@pytest.mark.parametrize("what", ["training", "prediction", "upload"])
def test_an_accepted_create_whose_answer_is_cut_is_outcome_unknown_with_its_id(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained, what: str
) -> None:
    path = {"training": "/trainings$", "prediction": "^/v1/predictions$", "upload": "^/v1/files$"}
    control.post(
        "/faults", json={"when": "truncated", "count": 1, "path": path[what], "methods": ["POST"]}
    )
    with pytest.raises(CreateOutcomeUnknown) as caught:
        if what == "training":
            _train(gateway, trained.zip_url)
        elif what == "prediction":
            gateway.create_prediction(trained.version, {"prompt": "usershape"})
        else:
            gateway.upload_file(b"zip", filename="x.zip", content_type="application/zip")
    counts = control.get("/stats").json()["counts"]
    created = {"training": "trainings.create", "prediction": "predictions.create"}
    assert counts.get(created.get(what, "files.create")) == (1 if what == "prediction" else 2)
    assert caught.value.created_id  # the id survived in the half that arrived
    if what == "training":
        assert gateway.get_training(caught.value.created_id).id == caught.value.created_id
    elif what == "prediction":
        assert gateway.get_prediction(caught.value.created_id).id == caught.value.created_id
    assert caught.value.created_id in str(caught.value)


def test_a_read_whose_answer_is_cut_is_read_again(
    gateway: ReplicateGateway, control: httpx.Client, trained: Trained
) -> None:
    control.post(
        "/faults", json={"when": "truncated", "count": 2, "path": "^/v1/(trainings|models)/"}
    )
    assert gateway.get_training(trained.training.id) == gateway.get_training(trained.training.id)
    assert gateway.get_model(MODEL) is not None
    control.post("/faults", json={"when": "truncated", "path": "^/v1/models/"})
    with pytest.raises(ReplicateError, match="could not be read") as caught:
        gateway.get_model(MODEL)
    assert not isinstance(caught.value, ReplicateUnavailable)


# -- error bodies with only a detail ---------------------------------------------------------
def test_detail_only_errors_through_every_operation(
    gateway: ReplicateGateway, make_gateway: MakeGateway, control: httpx.Client, trained: Trained
) -> None:
    _shape(control, "detail_only_errors")
    assert gateway.get_model("sandrasocial/absent") is None
    with pytest.raises(ReplicateNotFound):
        gateway.list_versions("sandrasocial/absent")
    with pytest.raises(ReplicateNotFound):
        gateway.get_training("aaaaaaaaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(ReplicateNotFound):
        gateway.cancel_prediction("aaaaaaaaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(ReplicateNotFound, match="destination does not exist"):
        gateway.create_training(
            FAST_FLUX_TRAINER, FAST_FLUX_TRAINER_VERSION, "sandrasocial/absent", {}
        )
    with pytest.raises(InvalidVersion):
        gateway.create_prediction("0" * 64, {"prompt": "usershape"})
    with pytest.raises(Unauthorized):
        make_gateway(token="").get_model(MODEL)
    control.post("/faults", json={"status": 503, "count": 1, "path": "^/v1/predictions$"})
    with pytest.raises(CreateOutcomeUnknown):
        gateway.create_prediction(trained.version, {"prompt": "usershape"})
    errors = httpx.get(f"{gateway.base_url}/v1/models/sandrasocial/absent").json()
    assert errors == {"detail": "You did not pass a valid authentication token"}


# -- everything at once ----------------------------------------------------------------------
def test_nothing_but_the_error_tree_leaves_the_gateway_under_every_shape_and_fault(
    make_gateway: MakeGateway, control: httpx.Client, trained: Trained
) -> None:
    """Every shape on half the objects, and a fifth of requests failing in every way the
    sandbox knows: each operation returns a value or raises a DashboardError."""
    gateway = make_gateway(
        policy=RetryPolicy(base_delay=0.01, max_delay=0.05, total_seconds=3, max_attempts=3)
    )
    for shape in (
        "null_cog_version",
        "null_openapi_schema",
        "aborted_default_example",
        "no_run_count",
        "null_logs",
        "hidden_version",
        "ns_timestamps",
        "bare_output_version",
        "null_output_version",
        "no_name_etag",
        "detail_only_errors",
        "sync_processing",
    ):
        _shape(control, shape, share=0.5)
    _shape(control, "data_removed", share=0.5, after_seconds=0)
    control.post("/faults", json={"status": 502, "share": 0.05, "seed": 3})
    control.post("/faults", json={"status": 500, "share": 0.05, "when": "after"})
    control.post("/faults", json={"when": "truncated", "share": 0.05})
    control.post("/faults", json={"status": 429, "share": 0.05, "retry_after_as": "date"})
    operations: list[Callable[[], object]] = [
        lambda: gateway.get_model(MODEL),
        lambda: gateway.get_models([MODEL, FAST_FLUX_TRAINER]),
        lambda: gateway.list_versions(MODEL),
        lambda: gateway.create_model(MODEL),
        lambda: gateway.list_trainings(),
        lambda: gateway.get_training(trained.training.id),
        lambda: gateway.cancel_training(trained.training.id),
        lambda: _train(gateway, trained.zip_url),
        lambda: gateway.create_prediction(trained.version, {"prompt": "usershape"}, wait=True),
        lambda: gateway.upload_file(b"zip", filename="x.zip", content_type="application/zip"),
        lambda: gateway.download(trained.zip_url, max_bytes=10**7),
    ]
    outcomes: list[str] = []
    for _ in range(6):
        for operation in operations:
            try:
                result = operation()
            except DashboardError as exc:
                outcomes.append(type(exc).__name__)
            else:
                outcomes.append("ok")
                if isinstance(result, Prediction):
                    outcomes.append(f"prediction {result.status}")
                    for read in (gateway.get_prediction, gateway.cancel_prediction):
                        try:
                            read(result.id)
                        except DashboardError as exc:
                            outcomes.append(type(exc).__name__)
    assert outcomes.count("ok") > len(outcomes) // 2, outcomes
