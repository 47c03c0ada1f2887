"""The app's retrain, played for the demo (``core.demo.app_retrain`` and ``python -m
core.demo --app-retrain``): one training on the sandbox of only the new photos (squeezed
when asked), with the app's input; the user's row left on a stale version when it
succeeds and without one when it fails; LIVE, an unknown user and a photo count the app
refuses are turned away before anything is made."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine, RowMapping, select

from core.app.calls import APP_TRAINER, adaptive_params
from core.config import Mode, get_settings
from core.db import make_engine
from core.demo.__main__ import main, retrain_lines, run_app_retrain
from core.demo.app_retrain import AppRetrainResult, app_retrain
from core.demo.history import PersonaHistory, Stage, TrainingStarts, play
from core.demo.personas import CAST
from core.demo.script import TRAINING_FAILURE
from core.demo.seed import write_rows
from core.errors import ConfigError, DataRejected, NotFound
from core.gateway.gateway import ReplicateGateway
from core.runtime import Runtime
from core.sandbox.server import RunningSandbox
from core.schema import user_models

pytestmark = pytest.mark.timeout(120)
PERSONA = next(cast for cast in CAST if cast.persona.key == "healthy_single")
USER_ID = PERSONA.persona.user_id
SETTINGS_ENV = ("DATABASE_URL", "REPLICATE_API_TOKEN", "OPS_DATABASE_URL", "REPLICATE_BASE_URL")


@dataclass(frozen=True)
class World:
    engine: Engine
    gateway: ReplicateGateway
    sandbox_url: str
    history: PersonaHistory | None  # None: nobody in it


@pytest.fixture
def empty_world(
    console_database_url: str, sandbox: RunningSandbox, gateway: ReplicateGateway
) -> Iterator[World]:
    """The app's tables and schema ops in a database of the test's own, and the sandbox."""
    engine = make_engine(console_database_url)
    yield World(engine, gateway, sandbox.base_url, None)
    engine.dispose()


@pytest.fixture
def world(empty_world: World) -> World:
    """One persona (one good training, a row on its version) played the demo's way."""
    with httpx.Client(base_url=empty_world.sandbox_url) as http:
        stage = Stage(
            gateway=empty_world.gateway,
            sandbox=http,
            owner="sandrasocial",
            starts=TrainingStarts(),
            report=lambda message: None,
        )
        history = play(PERSONA, stage)
    with empty_world.engine.begin() as conn:
        write_rows([history], conn=conn)
    return World(empty_world.engine, empty_world.gateway, empty_world.sandbox_url, history)


def _retrain(
    world: World, *, photos: int, squeeze: bool = False, fail: bool = False
) -> AppRetrainResult:
    said: list[str] = []
    result = app_retrain(
        app_engine=world.engine,
        gateway=world.gateway,
        sandbox_url=world.sandbox_url,
        mode=Mode.DEMO,
        user_id=USER_ID,
        wait_seconds=60,
        poll_seconds=0.05,
        progress=said.append,
        photos=photos,
        squeeze=squeeze,
        fail=fail,
    )
    assert any(result.training_id in line for line in said)  # progress was printed
    return result


def _creates(world: World) -> int:
    counts = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(counts.get("trainings.create", 0))


def _row(world: World) -> RowMapping:
    with world.engine.connect() as conn:
        return (
            conn.execute(select(user_models).where(user_models.c.user_id == USER_ID))
            .mappings()
            .one()
        )


def _zip_sizes(url: str) -> list[tuple[int, int]]:
    content = httpx.get(url).content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [Image.open(io.BytesIO(archive.read(name))).size for name in archive.namelist()]


def test_a_retrain_that_succeeds_trains_only_the_new_photos_and_leaves_the_row_stale(
    world: World,
) -> None:
    before = _row(world)
    first_version = before["replicate_version_id"]
    assert before["training_status"] == "completed" and first_version
    creates = _creates(world)

    result = _retrain(world, photos=6)

    assert _creates(world) == creates + 1  # exactly one training
    assert result.retrain and result.training_status == "succeeded" and result.ended
    sizes = _zip_sizes(result.zip_url)
    assert len(sizes) == 6  # the new photos only, not the first training's 16
    assert max(max(size) for size in sizes) == 1280  # not squeezed: they fit in 4 MB
    assert f"/_blob/training/{USER_ID}/" in result.zip_url
    training = world.gateway.get_training(result.training_id)
    assert training.trainer_model == APP_TRAINER
    assert training.input["input_images"] == result.zip_url
    assert training.input["trigger_word"] == before["trigger_word"]
    assert training.input["lora_rank"] == adaptive_params(6).lora_rank
    assert training.destination == before["replicate_model_id"] == result.destination
    # A new version, the model's latest, which the row does not hold.
    latest = world.gateway.list_versions(result.destination)[0].id
    assert result.new_version == latest != first_version
    after = _row(world)
    assert after["training_status"] == "completed"
    assert after["training_id"] == result.training_id
    assert after["replicate_version_id"] == first_version == result.row_version
    assert after["lora_weights_url"] == before["lora_weights_url"]
    assert result.stale and not result.version_lost
    shown = "\n".join(retrain_lines(result, watch_seconds=20.0))
    assert result.training_id in shown and "STALE" in shown
    assert "training_status completed -> pending" not in shown  # start: one line, net change
    assert "watch will review it within ~20 s" in shown


def test_a_retrain_that_fails_squeezed_wipes_the_row_s_version(world: World) -> None:
    before = _row(world)
    creates = _creates(world)

    result = _retrain(world, photos=5, squeeze=True, fail=True)

    assert _creates(world) == creates + 1
    assert result.training_status == "failed"
    sizes = _zip_sizes(result.zip_url)
    assert len(sizes) == 5 and max(max(size) for size in sizes) == 600  # squeezed
    assert (result.long_side, result.jpeg_quality) == (600, 55)
    after = _row(world)
    assert after["training_status"] == "failed"
    assert after["failure_reason"] == TRAINING_FAILURE
    assert after["replicate_version_id"] is None and after["lora_weights_url"] is None
    assert after["training_id"] == result.training_id
    # The old version still exists: the user lost it from the row only.
    versions = world.gateway.list_versions(before["replicate_model_id"])
    assert [version.id for version in versions] == [before["replicate_version_id"]]
    assert result.version_lost and not result.stale
    shown = "\n".join(retrain_lines(result, watch_seconds=None))
    assert "VERSION_LOST" in shown and before["replicate_version_id"] in shown
    assert "python -m core.watch --once" in shown  # the watch is off


def test_an_unknown_user_live_or_too_few_photos_are_refused_before_anything_is_made(
    empty_world: World,
) -> None:
    creates = _creates(empty_world)

    def attempt(
        *, mode: Mode = Mode.DEMO, user_id: str = USER_ID, photos: int | None = None, url: str = ""
    ) -> None:
        app_retrain(
            app_engine=empty_world.engine,
            gateway=empty_world.gateway,
            sandbox_url=url or empty_world.sandbox_url,
            mode=mode,
            user_id=user_id,
            photos=photos,
        )

    with pytest.raises(NotFound, match=r"No user 'nobody'.*--list"):
        attempt(user_id="nobody")
    with pytest.raises(ConfigError, match="only in DEMO"):
        attempt(mode=Mode.LIVE)
    with pytest.raises(DataRejected, match="3 photos: the app takes 5 to 20"):
        attempt(photos=3)
    with pytest.raises(ConfigError, match="not the Replicate sandbox"):
        attempt(url="http://127.0.0.1:9")
    assert _creates(empty_world) == creates


def test_the_command_refuses_an_unknown_user_in_one_line(
    empty_world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    settings = get_settings(data_dir=tmp_path)
    runtime = Runtime(
        settings,
        Mode.DEMO,
        empty_world.engine,
        empty_world.engine,
        empty_world.gateway,
        empty_world.sandbox_url,
    )
    status = run_app_retrain(runtime, user_id="nobody", photos=None, squeeze=False, fail=False)
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: No user 'nobody'")


def test_the_command_refuses_live_and_stray_options_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.com/app")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_Zx81kQm2Lp0Ws7Ty4Nc6Vb9")
    assert main(["--app-retrain", USER_ID, "--squeeze"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only in DEMO" in err
    assert main(["--squeeze"]) == 2
    assert "go with --app-retrain" in capsys.readouterr().err
    assert main(["--app-retrain", USER_ID, "--reset"]) == 2
    assert "goes alone" in capsys.readouterr().err
