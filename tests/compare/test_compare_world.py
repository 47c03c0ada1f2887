"""Comparisons on the demo world, with the sandbox and the real PostgreSQL: what product
must see (the trigger word loses the likeness, the blurry retrain is worse, a healthy
user shows no difference), and what must never happen (a prediction paid twice, a
comparison over budget, two runs for one confirmation)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.compare.foreground import run_here
from core.compare.inputs import ignored_inputs
from core.compare.request import retry_image
from core.compare.run import Next
from core.compare.tables import comparison_images, comparisons
from core.errors import PermissionDenied
from core.imaging.faces import FaceReader
from core.jobs.app import TaskName
from core.jobs.context import JobServices
from core.schema import audit_log
from tests.compare.conftest import PRICE, SETTINGS, SUPPORT, load, plan_for, request
from tests.demo_world import DemoWorld

pytestmark = pytest.mark.timeout(300)
Compare = Callable[..., tuple[int, dict[str, Any]]]


def _creates(world: DemoWorld) -> int:
    stats = httpx.get(f"{world.sandbox_url}/_sandbox/stats").json()["counts"]
    return int(stats.get("predictions.create", 0))


@contextmanager
def _fault(world: DemoWorld, **rule: Any) -> Iterator[None]:
    """A fault on the demo world's sandbox, removed afterwards (the world is shared)."""
    httpx.post(f"{world.sandbox_url}/_sandbox/faults", json=rule).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{world.sandbox_url}/_sandbox/faults").raise_for_status()


def _by_column(images: Any) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for image in images:
        grouped.setdefault(image.letter, []).append(image)
    return grouped


def _audit(world: DemoWorld, comparison_id: int) -> list[tuple[str, str]]:
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.id)
        ).all()
    return [
        (row.action, str(row.details.get("event")))
        for row in rows
        if (row.details or {}).get("comparison_id") == comparison_id
    ]


def test_the_apps_input_loses_the_trigger_overwritten_persona_and_the_sites_way_keeps_it(
    compare: Compare, synced_world: DemoWorld
) -> None:
    before = _creates(synced_world)
    comparison_id, found = compare("trigger_overwritten", seed_count=3)
    header, columns = found["header"], _by_column(found["images"])
    assert header.status == "finished"
    assert [column["name"] for column in header.columns] == ["stored", "latest", "site"]
    assert all(image.status == "succeeded" for image in found["images"])
    assert not any(image.scores["face_found"] for image in columns["A"])
    assert all(image.scores["face_found"] for image in columns["C"])
    assert "A (stored) loses the likeness" in " ".join(header.verdict)
    # Why: the app prompts with the row's trigger word, the site with the trained one.
    app_prompt, site_prompt = (
        header.columns[0]["input"]["prompt"],
        header.columns[2]["input"]["prompt"],
    )
    trained = header.columns[2]["trigger_word"]
    assert site_prompt.startswith(f"{trained}, ") and not app_prompt.startswith(f"{trained},")
    # Every image kept as a preview; paid once each; actual cost from predict_time.
    assert all(image.preview[:2] == b"\xff\xd8" for image in found["images"])
    assert _creates(synced_world) - before == len(found["images"]) == 12
    assert header.actual_usd is not None and float(header.estimate_usd) == pytest.approx(12 * PRICE)
    assert _audit(synced_world, comparison_id) == [
        ("compare:run", "requested"),
        ("compare:run", "finished"),
    ]


def test_the_blurry_retrains_first_version_is_closer_to_the_user_than_its_latest(
    compare: Compare,
) -> None:
    _, found = compare("blurry_retrain", columns="v1,v2", seed_count=4)
    header = found["header"]
    _, second = header.stats["columns"]
    floor = header.stats["noise_floor"]
    assert second["identity_vs_a"] > floor  # v2 further from the user's face, beyond noise
    assert second["sharpness_vs_a"] < 0
    assert header.verdict[0].startswith("A (v1) is closer to the user's photos than B (v2)")


def test_a_healthy_persona_shows_no_difference_beyond_noise(compare: Compare) -> None:
    _, found = compare("healthy_retrained", columns="stored,latest", seed_count=3)
    header = found["header"]
    assert header.stats["columns"][1]["faces"] == 3
    assert "no difference in likeness beyond noise" in header.verdict[0]


def test_a_lost_create_answer_is_found_on_replicate_and_never_sent_twice(
    compare: Compare, synced_world: DemoWorld
) -> None:
    before = _creates(synced_world)
    with _fault(
        synced_world, status=502, when="after", count=1, path="^/v1/predictions$", methods=["POST"]
    ):
        _, found = compare("healthy_single", columns="stored", seed_count=2)
    images = found["images"]
    assert all(image.status == "succeeded" for image in images)
    assert _creates(synced_world) - before == len(images) == 4
    assert len({image.prediction_id for image in images}) == 4


def test_a_refused_create_fails_one_image_which_is_retried_alone(
    synced_world: DemoWorld, face_reader: FaceReader
) -> None:
    services = JobServices(
        synced_world.engine, synced_world.engine, synced_world.gateway, lambda: face_reader
    )
    plan = plan_for(synced_world, "healthy_single", columns="stored", seed_count=2, repeat=False)
    comparison_id = request(synced_world, plan)
    with _fault(synced_world, status=500, count=1, path="^/v1/predictions$", methods=["POST"]):
        run_here(services, SETTINGS, comparison_id, deadline_seconds=120)
    found = load(synced_world, comparison_id)
    failed = [image for image in found["images"] if image.status == "failed"]
    assert len(failed) == 1 and "nothing was paid" in (failed[0].error or "")
    assert found["header"].status == "finished"  # the other image is unaffected and scored
    with synced_world.engine.begin() as conn:
        retry_image(conn, SUPPORT, failed[0].id, price_per_image_usd=PRICE, daily_budget_usd=100)
    assert load(synced_world, comparison_id)["header"].status == "running"
    run_here(
        services,
        SETTINGS,
        comparison_id,
        deadline_seconds=120,
        first=[Next(TaskName.PREDICT_IMAGE, failed[0].id)],
    )
    again = load(synced_world, comparison_id)
    retried = next(image for image in again["images"] if image.id == failed[0].id)
    assert retried.status == "succeeded" and retried.attempt == 2 and retried.scores is not None
    assert again["header"].status == "finished"
    assert [action for action, _ in _audit(synced_world, comparison_id)] == [
        "compare:run",
        "compare:run",
        "compare:retry",
        "compare:run",
    ]


def test_over_budget_is_refused_in_core_and_writes_nothing(synced_world: DemoWorld) -> None:
    plan = plan_for(synced_world, "healthy_single", seed_count=4)  # 16 images: $0.48
    with synced_world.engine.connect() as conn:
        rows_before = conn.execute(select(func.count()).select_from(comparisons)).scalar_one()
    with pytest.raises(PermissionDenied, match=r"estimated at \$0\.48.*left"):
        request(
            synced_world,
            plan,
            actor=SUPPORT.__class__(f"{uuid.uuid4().hex}@x.test", SUPPORT.role),
            budget=0.40,
        )
    with synced_world.engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(comparisons)).scalar_one() == rows_before
        )


def test_one_confirmation_is_one_comparison_however_often_it_is_sent(
    synced_world: DemoWorld,
) -> None:
    plan = plan_for(synced_world, "healthy_single", columns="stored", seed_count=1)
    token = uuid.uuid4().hex
    first = request(synced_world, plan, token=token)
    assert request(synced_world, plan, token=token) == first
    with synced_world.engine.connect() as conn:
        images = conn.execute(
            select(func.count())
            .select_from(comparison_images)
            .where(comparison_images.c.comparison_id == first)
        ).scalar_one()
    assert images == 2  # one seed, plus its repeat
    assert _audit(synced_world, first) == [("compare:run", "requested")]


def test_an_undeclared_input_is_marked_ignored_and_changes_nothing(
    synced_world: DemoWorld,
) -> None:
    plan = plan_for(synced_world, "healthy_single", columns="stored", seed_count=1, repeat=False)
    column = plan.columns[0]
    given = dict(next(iter(column.inputs.values())))
    assert column.ignored == ()  # the app's own input is all declared

    schema = synced_world.gateway.version_input_schema(
        column.column.model_id or "", column.column.version_id
    )
    extra = {**given, "negative_prompt": "blurry, deformed"}
    assert ignored_inputs(schema, extra) == ("negative_prompt",)
    gateway = synced_world.gateway
    outputs = []
    for sent in (given, extra):
        prediction = gateway.create_prediction(column.column.version_id, sent, wait=True)
        assert prediction.status == "succeeded"
        outputs.append(gateway.download(prediction.output[0], max_bytes=10**8))
    assert outputs[0] == outputs[1]
