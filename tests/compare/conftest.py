"""Comparisons on the session's demo world (``tests/demo_world.py``): its ledger synced
once, and a helper that plans, requests and runs a comparison the way the command line
does (the same steps the workers run, scheduled in this process)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from core.compare.foreground import run_here
from core.compare.plan import ComparePlan, plan_comparison, read_compare_facts
from core.compare.request import request_comparison
from core.compare.run import CompareSettings
from core.compare.tables import comparison_images, comparisons
from core.demo.personas import PERSONAS
from core.imaging.faces import FaceReader
from core.jobs.context import JobServices
from core.ledger.sync import sync_ledger
from core.roles import Actor, Role
from tests.demo_world import DemoWorld

SUPPORT = Actor("support@demo.sselfie.test", Role.SUPPORT)
PRICE = 0.03
SETTINGS = CompareSettings(price_per_second_usd=0.001525, prediction_timeout_seconds=120)
USER_OF = {persona.key: persona.user_id for persona in PERSONAS}


@pytest.fixture(scope="package")
def synced_world(demo_world: DemoWorld) -> DemoWorld:
    sync_ledger(
        ops_engine=demo_world.engine, app_engine=demo_world.engine, gateway=demo_world.gateway
    )
    return demo_world


def plan_for(world: DemoWorld, persona: str, **options: Any) -> ComparePlan:
    with world.engine.connect() as conn:
        facts = read_compare_facts(conn, conn, USER_OF[persona])
    return plan_comparison(world.gateway, facts, **options)


def request(
    world: DemoWorld,
    plan: ComparePlan,
    *,
    actor: Actor = SUPPORT,
    token: str | None = None,
    budget: float = 100.0,
) -> int:
    with world.engine.begin() as conn:
        return request_comparison(
            conn,
            actor,
            plan,
            confirm_token=token or uuid.uuid4().hex,
            price_per_image_usd=PRICE,
            daily_budget_usd=budget,
            background=False,
        )


@pytest.fixture
def compare(
    synced_world: DemoWorld, face_reader: FaceReader
) -> Callable[..., tuple[int, dict[str, Any]]]:
    """Plan, request and run a comparison for a persona; (id, its row and images)."""

    def run(persona: str, **options: Any) -> tuple[int, dict[str, Any]]:
        plan = plan_for(synced_world, persona, **options)
        comparison_id = request(synced_world, plan)
        services = JobServices(
            synced_world.engine, synced_world.engine, synced_world.gateway, lambda: face_reader
        )
        run_here(services, SETTINGS, comparison_id, deadline_seconds=240)
        return comparison_id, load(synced_world, comparison_id)

    return run


def load(world: DemoWorld, comparison_id: int) -> dict[str, Any]:
    with world.engine.connect() as conn:
        header = conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one()
        images = conn.execute(
            select(comparison_images).where(comparison_images.c.comparison_id == comparison_id)
        ).all()
    return {"header": header, "images": images}
