"""The seeded demo world: each persona's bug is in the raw values (the app's row and
Replicate's answers), healthy personas are consistent, and seeding is idempotent."""

from __future__ import annotations

import io
import zipfile
from functools import cache

import httpx
import pytest
from PIL import Image
from sqlalchemy import RowMapping, func, select

from core.app.calls import (
    APP_TRAINER,
    adaptive_params,
    bare_version,
    first_trigger_word,
)
from core.demo import PERSONAS, is_seeded, seed_demo_world
from core.demo.seed import wipe_demo_rows
from core.drift import AppRow, ModelFacts, TrainingRecord, UserFacts, diagnose
from core.gateway.values import Training, is_version_hash
from core.imaging.faces import FaceReader
from core.ledger.reviews import latest_verdict, retrain_reviews
from core.sandbox.catalog import FAST_FLUX_TRAINER_VERSION, OSTRIS_TRAINER
from core.sandbox.dataset import laplacian_variance
from core.schema import ai_images, generated_images, user_models, users
from tests.demo_world import DemoWorld

USER_IDS = {persona.key: persona.user_id for persona in PERSONAS}


def model_row(world: DemoWorld, key: str) -> RowMapping:
    with world.engine.connect() as conn:
        row = (
            conn.execute(select(user_models).where(user_models.c.user_id == USER_IDS[key]))
            .mappings()
            .one()
        )
    return row


@cache
def _all_trainings(world: DemoWorld) -> tuple[Training, ...]:
    return tuple(world.gateway.list_trainings())


def trainings_of(world: DemoWorld, key: str) -> list[Training]:
    """The user's trainings, oldest first: the app's ZIPs live under training/{user_id}/."""
    marker = f"/_blob/training/{USER_IDS[key]}/"
    found = [
        training
        for training in _all_trainings(world)
        if marker in str(training.input.get("input_images"))
    ]
    return list(reversed(found))


def succeeded(trainings: list[Training]) -> list[Training]:
    return [training for training in trainings if training.status == "succeeded"]


def version_ids(world: DemoWorld, model_id: str) -> list[str]:
    return [version.id for version in world.gateway.list_versions(model_id)]


def zip_photos(world: DemoWorld, training: Training) -> list[Image.Image]:
    content = httpx.get(str(training.input["input_images"])).content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [Image.open(io.BytesIO(archive.read(name))) for name in archive.namelist()]


def assert_consistent(world: DemoWorld, key: str) -> None:
    """What a healthy row looks like: on the model's latest version, with that version's
    training's weights and trigger word."""
    row = model_row(world, key)
    latest = succeeded(trainings_of(world, key))[-1]
    assert row["training_status"] == "completed"
    assert row["replicate_version_id"] == version_ids(world, row["replicate_model_id"])[0]
    assert row["replicate_version_id"] == latest.version_hash
    assert row["lora_weights_url"] == latest.output_weights
    assert row["trigger_word"] == latest.input["trigger_word"]
    assert row["training_id"] == latest.id
    assert row["replicate_model_id"] == latest.destination


# -- the whole world --------------------------------------------------------------------


def test_seeding_reports_what_it_made_and_how_long_it_took(demo_world: DemoWorld) -> None:
    report = demo_world.report
    assert report.seeded
    assert report.personas == len(PERSONAS)
    assert report.trainings == len(_all_trainings(demo_world)) == 25
    assert report.generations > 20
    assert report.seconds > 0
    assert any("training 1/3" in message for message in demo_world.progress)
    assert demo_world.progress[-1].startswith("Demo world ready")


def test_every_persona_has_a_user_row_and_trainers_follow_the_app(
    demo_world: DemoWorld,
) -> None:
    with demo_world.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(users))}
    for persona in PERSONAS:
        assert rows[persona.user_id].email == persona.email
        assert persona.email.endswith("@example.com")
    for training in _all_trainings(demo_world):
        assert training.input["learning_rate"] == 0.00008
        count = len(zip_photos(demo_world, training))
        assert training.input["lora_rank"] == adaptive_params(count).lora_rank
        user_id = str(training.input["input_images"]).split("/_blob/training/")[1].split("/")[0]
        assert training.input["trigger_word"] == first_trigger_word(user_id)


def test_seeding_again_adds_nothing(demo_world: DemoWorld) -> None:
    def counts() -> tuple[int, int, int, int]:
        with demo_world.engine.connect() as conn:
            return tuple(
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (users, user_models, ai_images, retrain_reviews)
            )  # type: ignore[return-value]

    before = counts()
    stats_before = httpx.get(f"{demo_world.sandbox_url}/_sandbox/stats").json()["counts"]
    assert is_seeded(engine=demo_world.engine)
    again = seed_demo_world(
        engine=demo_world.engine, gateway=demo_world.gateway, sandbox_url=demo_world.sandbox_url
    )
    assert not again.seeded and again.trainings == 0
    assert counts() == before
    stats_after = httpx.get(f"{demo_world.sandbox_url}/_sandbox/stats").json()["counts"]
    assert stats_after.get("trainings.create") == stats_before.get("trainings.create")


def test_wiping_removes_every_demo_row(demo_world: DemoWorld) -> None:
    with demo_world.engine.connect() as conn, conn.begin() as transaction:
        assert wipe_demo_rows(conn=conn) == len(PERSONAS)
        for table in (users, user_models, ai_images, generated_images):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        transaction.rollback()
    assert is_seeded(engine=demo_world.engine)


def test_seeding_refuses_anything_but_the_sandbox(demo_world: DemoWorld) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="not the Replicate sandbox"):
        seed_demo_world(
            engine=demo_world.engine,
            gateway=demo_world.gateway,
            sandbox_url="http://127.0.0.1:9",
            reset=True,
        )
    assert is_seeded(engine=demo_world.engine)


# -- healthy ------------------------------------------------------------------------------


def test_healthy_single_is_consistent_and_generates_with_the_app_input(
    demo_world: DemoWorld,
    face_reader: FaceReader,
) -> None:
    assert_consistent(demo_world, "healthy_single")
    row = model_row(demo_world, "healthy_single")
    with demo_world.engine.connect() as conn:
        images = (
            conn.execute(select(ai_images).where(ai_images.c.user_id == USER_IDS["healthy_single"]))
            .mappings()
            .all()
        )
    assert len(images) == 3
    for image in images:
        prediction = demo_world.gateway.get_prediction(image["prediction_id"])
        assert prediction.status == "succeeded"
        assert prediction.version == row["replicate_version_id"]
        assert prediction.input["hf_lora"] == row["lora_weights_url"]
        assert prediction.input["prompt"] == image["generated_prompt"]
        assert image["generated_prompt"].startswith(f"{row['trigger_word']}, Black woman, ")
        assert image["generation_status"] == "completed"
    picture = httpx.get(images[0]["image_url"]).content
    assert len(face_reader.read(picture)) == 1


def test_healthy_retrained_is_on_the_newest_of_two_versions(demo_world: DemoWorld) -> None:
    assert_consistent(demo_world, "healthy_retrained")
    row = model_row(demo_world, "healthy_retrained")
    assert len(version_ids(demo_world, row["replicate_model_id"])) == 2
    counts = [training.input["steps"] for training in trainings_of(demo_world, "healthy_retrained")]
    assert counts == [1400, 1400]


# -- the bugs, in the raw values -------------------------------------------------------------


def test_stale_version_is_a_version_of_its_model_but_not_the_latest(
    demo_world: DemoWorld,
) -> None:
    row = model_row(demo_world, "stale_version")
    trainings = succeeded(trainings_of(demo_world, "stale_version"))
    versions = version_ids(demo_world, row["replicate_model_id"])
    assert len(trainings) == 3 and len(versions) == 3
    assert row["training_status"] == "completed"
    assert row["replicate_version_id"] in versions
    assert row["replicate_version_id"] != versions[0] == trainings[-1].version_hash
    assert row["replicate_version_id"] == trainings[0].version_hash
    assert row["lora_weights_url"] == trainings[0].output_weights
    assert row["training_id"] == trainings[-1].id


def test_version_with_model_holds_owner_name_colon_hash(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "version_with_model")
    stored = row["replicate_version_id"]
    assert ":" in stored and not is_version_hash(stored)
    assert stored.split(":")[0] == row["replicate_model_id"]
    assert bare_version(stored) == version_ids(demo_world, row["replicate_model_id"])[0]


def test_trainer_hash_is_stored_and_is_no_version_of_the_model(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "trainer_hash")
    assert row["replicate_version_id"] == FAST_FLUX_TRAINER_VERSION
    assert row["replicate_version_id"] not in version_ids(demo_world, row["replicate_model_id"])
    with demo_world.engine.connect() as conn:
        made = conn.execute(
            select(func.count())
            .select_from(ai_images)
            .where(ai_images.c.user_id == USER_IDS["trainer_hash"])
        ).scalar_one()
    assert made == 0  # Replicate refuses the trainer's hash; the app records nothing


def test_trigger_overwritten_differs_from_the_trained_one_and_loses_the_face(
    demo_world: DemoWorld,
    face_reader: FaceReader,
) -> None:
    row = model_row(demo_world, "trigger_overwritten")
    training = succeeded(trainings_of(demo_world, "trigger_overwritten"))[-1]
    assert row["replicate_version_id"] == training.version_hash
    assert row["trigger_word"] != training.input["trigger_word"]
    with demo_world.engine.connect() as conn:
        images = (
            conn.execute(
                select(ai_images)
                .where(ai_images.c.user_id == USER_IDS["trigger_overwritten"])
                .order_by(ai_images.c.id)
            )
            .mappings()
            .all()
        )
    after = [
        image for image in images if image["generated_prompt"].startswith(row["trigger_word"] + ",")
    ]
    assert len(after) == 2
    assert face_reader.read(httpx.get(after[-1]["image_url"]).content) == []


def test_model_id_missing_while_completed_with_a_training(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "model_id_missing")
    assert row["replicate_model_id"] is None
    assert row["training_status"] == "completed" and row["training_id"]
    assert demo_world.gateway.get_training(row["training_id"]).status == "succeeded"


def test_model_deleted_answers_404_but_its_training_remains(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "model_deleted")
    assert demo_world.gateway.get_model(row["replicate_model_id"]) is None
    training = demo_world.gateway.get_training(row["training_id"])
    assert training.status == "succeeded"
    assert training.version_hash == row["replicate_version_id"]


def test_version_lost_after_a_failed_retrain(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "version_lost")
    first, retrain = trainings_of(demo_world, "version_lost")
    assert row["replicate_version_id"] is None and row["lora_weights_url"] is None
    assert row["training_status"] == "failed"
    assert row["failure_reason"] == retrain.error and retrain.status == "failed"
    assert row["training_id"] == retrain.id
    assert first.status == "succeeded"
    assert first.version_hash in version_ids(demo_world, row["replicate_model_id"])


def test_stuck_training_row_says_training_while_replicate_says_succeeded(
    demo_world: DemoWorld,
) -> None:
    row = model_row(demo_world, "stuck_training")
    assert row["training_status"] == "training"
    assert row["replicate_version_id"] is None
    assert demo_world.gateway.get_training(row["training_id"]).status == "succeeded"


def test_weights_rebuilt_differ_from_the_training_output(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "weights_rebuilt")
    training = demo_world.gateway.get_training(row["training_id"])
    assert row["lora_weights_url"] == (
        f"https://replicate.delivery/pbxt/{row['replicate_version_id']}/flux-lora.tar"
    )
    assert row["lora_weights_url"] != training.output_weights
    assert row["replicate_version_id"] == training.version_hash


def test_two_models_have_trainings_to_two_destinations(demo_world: DemoWorld) -> None:
    row = model_row(demo_world, "two_models")
    trainings = succeeded(trainings_of(demo_world, "two_models"))
    destinations = [training.destination for training in trainings]
    assert len(set(destinations)) == 2
    assert row["replicate_model_id"] == destinations[-1]
    assert_consistent(demo_world, "two_models")


def test_blurry_retrain_zip_holds_five_blurry_photos(demo_world: DemoWorld) -> None:
    first, retrain = succeeded(trainings_of(demo_world, "blurry_retrain"))
    before, after = zip_photos(demo_world, first), zip_photos(demo_world, retrain)
    assert (len(before), len(after)) == (16, 5)
    assert max(laplacian_variance(photo) for photo in after) < 50
    assert min(laplacian_variance(photo) for photo in before) > 100
    assert retrain.input["lora_rank"] != first.input["lora_rank"]
    assert_consistent(demo_world, "blurry_retrain")


def test_squeezed_retrain_zip_holds_600_px_photos(demo_world: DemoWorld) -> None:
    first, retrain = succeeded(trainings_of(demo_world, "squeezed_retrain"))
    before, after = zip_photos(demo_world, first), zip_photos(demo_world, retrain)
    assert len(before) == len(after) == 16
    assert {max(photo.size) for photo in after} == {600}
    assert min(min(photo.size) for photo in before) >= 1024
    assert {max(photo.size) for photo in before} >= {1280}
    assert_consistent(demo_world, "squeezed_retrain")


def test_trainer_changed_between_the_two_trainings(demo_world: DemoWorld) -> None:
    first, second = succeeded(trainings_of(demo_world, "trainer_changed"))
    assert (first.trainer_model, second.trainer_model) == (OSTRIS_TRAINER, APP_TRAINER)
    assert {**first.input, "input_images": ""} == {**second.input, "input_images": ""}
    assert_consistent(demo_world, "trainer_changed")


def test_params_changed_between_the_two_trainings(demo_world: DemoWorld) -> None:
    first, second = succeeded(trainings_of(demo_world, "params_changed"))
    assert (len(zip_photos(demo_world, first)), len(zip_photos(demo_world, second))) == (18, 14)
    assert (first.input["lora_rank"], second.input["lora_rank"]) == (48, 40)
    assert (first.input["num_repeats"], second.input["num_repeats"]) == (20, 18)
    assert_consistent(demo_world, "params_changed")


def test_no_model_yet_has_no_model_row(demo_world: DemoWorld) -> None:
    with demo_world.engine.connect() as conn:
        found = conn.execute(
            select(user_models).where(user_models.c.user_id == USER_IDS["no_model_yet"])
        ).first()
    assert found is None
    assert trainings_of(demo_world, "no_model_yet") == []


# -- the contract with the drift engine ---------------------------------------------------


def test_the_drift_engine_reports_each_personas_expected_codes(demo_world: DemoWorld) -> None:
    """Every code but the DATASET_* ones, which need the photo facts the ledger measures
    with dlib (minutes for the whole world); those were checked through the ledger once."""

    def model_facts(model_id: str) -> ModelFacts:
        if demo_world.gateway.get_model(model_id) is None:
            return ModelFacts(model_id, found=False)
        return ModelFacts(
            model_id, found=True, versions=tuple(demo_world.gateway.list_versions(model_id))
        )

    for persona in PERSONAS:
        if persona.key == "no_model_yet":
            continue
        stored = model_row(demo_world, persona.key)
        row = AppRow(
            **{
                name: stored[name]
                for name in (
                    "user_id",
                    "replicate_model_id",
                    "replicate_version_id",
                    "trigger_word",
                    "training_status",
                    "training_id",
                    "lora_weights_url",
                    "failure_reason",
                    "updated_at",
                )
            }
        )
        ledger = tuple(
            TrainingRecord.from_training(training)
            for training in trainings_of(demo_world, persona.key)
        )
        others = {
            record.destination: model_facts(record.destination)
            for record in ledger
            if record.destination and record.destination != row.model_id
        }
        with demo_world.engine.connect() as conn:
            retrain = latest_verdict(conn, persona.user_id)  # the demo world's past reviews
        facts = UserFacts(
            row=row,
            model=model_facts(row.model_id) if row.model_id else None,
            trainings=ledger,
            models_by_id=others,
            retrain=retrain,
        )
        found = {finding.code for finding in diagnose(facts)}
        expected = {code for code in persona.expected_codes if not code.startswith("DATASET_")}
        assert found == expected, persona.key
