"""Asking for a comparison, retrying one image, cancelling, and granting budget.

Every function writes schema ops through the caller's connection and leaves the commit to
the caller, so a comparison, its images, its audit record and its first job commit
together or not at all.

- ``request_comparison``: anyone with the compare permission, within their daily budget
  (estimates of today's comparisons, UTC, plus what an admin granted), refused in core.
  One run per confirmation: the confirm dialog mints a token once, and the token is
  unique in the database, so however often Confirm is clicked (or in how many tabs) the
  second request returns the first comparison. Requests of one person are serialised by
  an advisory lock, so two at once cannot both fit in the same remaining budget.
- ``retry_image``: a failed, cancelled or aborted image runs again alone (budget counted).
- ``cancel_comparison``: images not yet sent are cancelled; a job cancels the rest on
  Replicate (no network inside the transaction).
- ``grant_budget``: admin only.

Audited as ``compare:run`` (requested, with the estimate; again with the outcome),
``compare:retry``, ``compare:cancel`` and ``compare:grant``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, func, insert, null, select, text
from sqlalchemy.exc import IntegrityError

from core import audit
from core.compare.plan import REPEAT, ComparePlan
from core.compare.states import COMPARISON, IMAGE
from core.compare.tables import (
    IMAGE_ENDED,
    compare_grants,
    comparison_images,
    comparisons,
)
from core.errors import Conflict, DataRejected, NotFound, PermissionDenied
from core.jobs.app import Priority, Queue, TaskName, defer
from core.redaction import storable, stored_url
from core.roles import Actor, Permission, Role, require

RUN_ACTION = "compare:run"
RETRY_ACTION = "compare:retry"
CANCEL_ACTION = "compare:cancel"
GRANT_ACTION = "compare:grant"
MAX_GRANT_USD = Decimal("500")


@dataclass(frozen=True)
class Budget:
    """One person's compare budget for a UTC day, in dollars."""

    daily: Decimal
    granted: Decimal
    spent: Decimal  # estimates of today's comparisons and retries

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.daily + self.granted - self.spent)


def _usd(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.0001"))


def _today(conn: Connection) -> date:
    now: datetime = conn.execute(select(func.now())).scalar_one()
    return now.astimezone(UTC).date()


def budget_of(conn: Connection, email: str, *, daily_usd: float) -> Budget:
    """What ``email`` may still spend today (UTC)."""
    day = _today(conn)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    spent = conn.execute(
        select(
            func.coalesce(func.sum(comparisons.c.estimate_usd - comparisons.c.released_usd), 0)
        ).where(comparisons.c.requested_by == email, comparisons.c.requested_at >= start)
    ).scalar_one()
    granted = conn.execute(
        select(func.coalesce(func.sum(compare_grants.c.extra_usd), 0)).where(
            compare_grants.c.email == email, compare_grants.c.day == day
        )
    ).scalar_one()
    return Budget(_usd(daily_usd), _usd(granted), _usd(spent))


def release_unspent(conn: Connection, comparison_id: int) -> None:
    """Give back to the budget the estimate of every attempt that ended without a create
    sent (refused, cancelled before it was sent, lost and not on Replicate): an image's
    attempts less the predictions it sent. Written as a total, so running it twice is the
    same as once."""
    attempts_unsent = func.greatest(
        0,
        comparison_images.c.attempt
        - func.cardinality(comparison_images.c.earlier_predictions)
        - case((comparison_images.c.prediction_id.is_(None), 0), else_=1),
    )
    unsent = (
        select(func.coalesce(func.sum(attempts_unsent), 0))
        .where(
            comparison_images.c.comparison_id == comparison_id,
            comparison_images.c.status.in_(IMAGE_ENDED),
        )
        .scalar_subquery()
    )
    COMPARISON.move(
        conn,
        comparison_id,
        "release",
        values={
            "released_usd": func.coalesce(comparisons.c.price_per_image_usd, 0) * unsent,
        },
    )


def _lock_person(conn: Connection, email: str) -> None:
    key = int.from_bytes(
        hashlib.sha256(f"compare:{email}".encode()).digest()[:8], "big", signed=True
    )
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _refuse_over_budget(budget: Budget, cost: Decimal, what: str) -> None:
    if cost > budget.remaining:
        raise PermissionDenied(
            f"{what} is estimated at ${cost:.2f}, and ${budget.remaining:.2f} of today's "
            f"${budget.daily + budget.granted:.2f} compare budget is left (UTC day). Use "
            "fewer seeds or columns, or ask an admin to grant more for today."
        )


def request_comparison(
    conn: Connection,
    actor: Actor,
    plan: ComparePlan,
    *,
    confirm_token: str,
    price_per_image_usd: float,
    daily_budget_usd: float,
    background: bool = True,
    start_in_seconds: float | None = None,
    priority: int = Priority.PERSON_WAITING,
) -> int:
    """Record the comparison (queued, its start job deferred when ``background``, to run
    after ``start_in_seconds`` when given, at ``priority``), audited; its id. The same
    ``confirm_token`` again returns the same id and records nothing."""
    require(actor, Permission.COMPARE)
    token = confirm_token.strip()
    if not token or len(token) > 200:
        raise DataRejected("A comparison needs the confirmation it was shown with.")
    _lock_person(conn, actor.email)
    existing = conn.execute(
        select(comparisons.c.id).where(comparisons.c.confirm_token == token)
    ).scalar_one_or_none()
    if existing is not None:
        return int(existing)
    estimate = plan.estimate_usd(price_per_image_usd)
    _refuse_over_budget(
        budget_of(conn, actor.email, daily_usd=daily_budget_usd), estimate, "This comparison"
    )
    columns = [column.to_json() for column in plan.columns]
    try:
        with conn.begin_nested():
            comparison_id = int(
                conn.execute(
                    insert(comparisons)
                    .values(
                        user_id=plan.facts.user_id,
                        requested_by=actor.email,
                        requested_role=actor.role.value,
                        confirm_token=token,
                        status="queued",
                        prompt=plan.prompt,
                        preset=plan.preset,
                        category=plan.category,
                        seeds=list(plan.seeds),
                        columns=storable(columns),
                        repeat_letter=plan.columns[0].column.letter if plan.repeat else None,
                        reference_zips=[stored_url(url) for url in plan.facts.zip_urls],
                        estimate_usd=estimate,
                        price_per_image_usd=_usd(price_per_image_usd),
                    )
                    .returning(comparisons.c.id)
                ).scalar_one()
            )
    except IntegrityError:  # the same confirmation, committed by another process just now
        found = conn.execute(
            select(comparisons.c.id).where(comparisons.c.confirm_token == token)
        ).scalar_one()
        return int(found)
    rows: list[dict[str, Any]] = []
    for planned in plan.columns:
        for seed in plan.seeds:
            rows.append(
                {
                    "comparison_id": comparison_id,
                    "letter": planned.column.letter,
                    "seed": seed,
                    "version_id": planned.column.version_id,
                    "input": storable(dict(planned.inputs[seed])),
                }
            )
    if plan.repeat:
        first = plan.columns[0]
        for seed in plan.seeds:
            rows.append(
                {
                    "comparison_id": comparison_id,
                    "letter": REPEAT,
                    "seed": seed,
                    "version_id": first.column.version_id,
                    "input": storable(dict(first.inputs[seed])),
                }
            )
    conn.execute(insert(comparison_images), rows)
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=RUN_ACTION,
        target_user_id=plan.facts.user_id,
        details={
            "event": "requested",
            "comparison_id": comparison_id,
            "images": plan.image_count,
            "estimate_usd": str(estimate),
            "columns": [f"{item['letter']}: {item['name']}" for item in columns],
            "seeds": len(plan.seeds),
            "preset": plan.preset,
        },
    )
    if background:
        defer(
            conn,
            TaskName.START_COMPARISON,
            queue=Queue.COMPARE,
            queueing_lock=f"compare-start:{comparison_id}",
            schedule_in_seconds=start_in_seconds,
            priority=priority,
            comparison_id=comparison_id,
        )
    return comparison_id


def retry_image(
    conn: Connection,
    actor: Actor,
    image_id: int,
    *,
    price_per_image_usd: float,
    daily_budget_usd: float,
) -> None:
    """Run one failed, cancelled or aborted image again, alone (a new prediction; the
    earlier one is kept in ``earlier_predictions``); audited, budget counted."""
    require(actor, Permission.COMPARE)
    _lock_person(conn, actor.email)
    row = conn.execute(
        select(comparison_images, comparisons.c.user_id, comparisons.c.status.label("c_status"))
        .join(comparisons, comparisons.c.id == comparison_images.c.comparison_id)
        .where(comparison_images.c.id == image_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no comparison image #{image_id}.")
    if row.status == "succeeded" or row.status not in IMAGE_ENDED:
        raise Conflict(
            f"Image #{image_id} is {row.status}: only a failed, cancelled or aborted image "
            "can be run again."
        )
    if row.c_status == "cancelled":
        raise Conflict(f"Comparison #{row.comparison_id} was cancelled: start a new one.")
    cost = _usd(price_per_image_usd)
    _refuse_over_budget(
        budget_of(conn, actor.email, daily_usd=daily_budget_usd), cost, "Running it again"
    )
    changed = IMAGE.move(
        conn,
        image_id,
        "retry",
        where=[comparison_images.c.status == row.status],
        values=dict(
            attempt=comparison_images.c.attempt + 1,
            earlier_predictions=func.array_append(
                comparison_images.c.earlier_predictions, comparison_images.c.prediction_id
            )
            if row.prediction_id
            else comparison_images.c.earlier_predictions,
            prediction_id=None,
            claimed_at=None,
            error=None,
            output_url=None,
            preview=None,
            scores=null(),
            predict_time=None,
            updated_at=func.now(),
            lease_owner=None,
            lease_expires_at=None,
        ),
    )
    if changed is None:
        raise Conflict(f"Image #{image_id} changed just now; reload to see it.")
    COMPARISON.move(
        conn,
        row.comparison_id,
        "reopen",
        values={"finished_at": None, "estimate_usd": comparisons.c.estimate_usd + cost},
    )
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=RETRY_ACTION,
        target_user_id=row.user_id,
        details={
            "comparison_id": row.comparison_id,
            "image_id": image_id,
            "column": row.letter,
            "seed": row.seed,
            "earlier_prediction": row.prediction_id,
            "estimate_usd": str(cost),
        },
    )
    defer(
        conn,
        TaskName.PREDICT_IMAGE,
        queue=Queue.COMPARE,
        queueing_lock=f"compare-predict:{image_id}",
        priority=Priority.PERSON_WAITING,
        image_id=image_id,
    )


def cancel_comparison(conn: Connection, actor: Actor, comparison_id: int) -> None:
    """Cancel a queued or running comparison (whoever asked for it, or an admin)."""
    require(actor, Permission.COMPARE)
    row = conn.execute(select(comparisons).where(comparisons.c.id == comparison_id)).one_or_none()
    if row is None:
        raise NotFound(f"There is no comparison #{comparison_id}.")
    if row.requested_by != actor.email and actor.role is not Role.ADMIN:
        raise PermissionDenied(
            f"Comparison #{comparison_id} was asked for by {row.requested_by}: only they "
            "or an admin can cancel it."
        )
    cancelled = COMPARISON.move(conn, comparison_id, "cancel", values={"finished_at": func.now()})
    if cancelled is None:
        raise Conflict(f"Comparison #{comparison_id} already ended ({row.status}).")
    IMAGE.move_all(
        conn,
        "cancel_unsent",
        where=[comparison_images.c.comparison_id == comparison_id],
        values={"error": "cancelled before it was sent", "updated_at": func.now()},
    )
    release_unspent(conn, comparison_id)
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=CANCEL_ACTION,
        target_user_id=row.user_id,
        details={"comparison_id": comparison_id},
    )
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=RUN_ACTION,
        target_user_id=row.user_id,
        details={"event": "cancelled", "comparison_id": comparison_id},
    )
    defer(
        conn,
        TaskName.CANCEL_COMPARISON,
        queue=Queue.COMPARE,
        queueing_lock=f"compare-cancel:{comparison_id}",
        priority=Priority.PERSON_WAITING,
        comparison_id=comparison_id,
    )


def grant_budget(
    conn: Connection, actor: Actor, email: str, extra_usd: float, *, reason: str
) -> Budget:
    """Grant ``email`` more compare budget for today (UTC); admin only, audited."""
    require(actor, Role.ADMIN)
    who = email.strip().lower()
    why = reason.strip()
    amount = _usd(extra_usd)
    if not who or "@" not in who:
        raise DataRejected("Grant budget to a staff email address.")
    if not why:
        raise DataRejected("Say why the extra budget is needed (it is audited).")
    if not Decimal(0) < amount <= MAX_GRANT_USD:
        raise DataRejected(f"Grant between $0.01 and ${MAX_GRANT_USD} at a time.")
    conn.execute(
        insert(compare_grants).values(
            email=who, day=_today(conn), extra_usd=amount, granted_by=actor.email, reason=why
        )
    )
    audit.record(
        conn,
        actor_email=actor.email,
        actor_role=actor.role,
        action=GRANT_ACTION,
        reason=why,
        details={"email": who, "extra_usd": str(amount)},
    )
    return budget_of(conn, who, daily_usd=0)
