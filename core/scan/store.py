"""What the pages read about scans: the latest findings per user, counts, trend, worst users.

"The latest finished scan" is, per user, the newest ended scan that looked at that user:
the newest finished fleet scan (a scan of everyone), overlaid by every scan that ended
after it and stored some users: scans of some users (``--user``, a rescan after a
repair), and fleet scans that were cancelled or failed part way (each batch of users is
stored whole, so the users they did check keep those findings). Without such scans that
is simply the newest finished fleet scan. So a rescan of one user never hides the rest of
the fleet, and a repaired user shows healthy as soon as they are rescanned. Queued and
running scans are never read here (``last_fleet_scan`` and friends say what runs). The
trend is over finished fleet scans only: a scan of three users is not a fleet count.

Every function takes a connection to schema ``ops``; the caller owns it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Subquery,
    and_,
    case,
    func,
    intersect,
    select,
    tuple_,
    union_all,
)

from core.drift import Finding, Fix, RepairAction, Severity
from core.drift.codes import CODE_ORDER
from core.scan.tables import (
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    FLEET,
    scan_findings,
    scan_users,
    scans,
)
from core.scan.values import CodeCount, ScanSummary, TrendPoint, UserCheck, WorstUser

_SEVERITY_RANK = {level.value: level.rank for level in Severity}
_EVERYONE = scans.c.scope == FLEET


@dataclass(frozen=True)
class _View:
    """Which finished scans make up "the latest": one of everyone, and newer partial ones."""

    base: int | None
    newer: tuple[int, ...] = ()

    @property
    def scan_ids(self) -> tuple[int, ...]:
        return (*((self.base,) if self.base is not None else ()), *self.newer)


def summary_from_row(row: Row[Any]) -> ScanSummary:
    """A ``ScanSummary`` from an ``ops.scans`` row."""
    return ScanSummary(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        users_total=row.users_total,
        users_scanned=row.users_scanned,
        requested_by=row.requested_by,
        error=row.error,
        scope=row.scope,
        phase=row.phase,
        heartbeat_at=row.heartbeat_at,
        picked_up_at=row.picked_up_at,
        zips_total=row.zips_total,
        zips_done=row.zips_done,
        photos_read=row.photos_read,
        batches_total=row.batches_total,
        batches_done=row.batches_done,
        planned=row.planned,
        cancelled_by=row.cancelled_by,
    )


def last_scan(conn: Connection) -> ScanSummary | None:
    """The most recently requested scan of any scope, whatever its status."""
    row = conn.execute(select(scans).order_by(scans.c.id.desc()).limit(1)).one_or_none()
    return None if row is None else summary_from_row(row)


def last_fleet_scan(conn: Connection) -> ScanSummary | None:
    """The most recently requested fleet scan (queued, running or ended): what the Fleet
    page's headline and the Users caption speak of. Rescans of some users are not it."""
    row = conn.execute(
        select(scans).where(_EVERYONE).order_by(scans.c.id.desc()).limit(1)
    ).one_or_none()
    return None if row is None else summary_from_row(row)


def active_fleet_scan(conn: Connection) -> ScanSummary | None:
    """The fleet scan queued or running, if any (there is at most one)."""
    row = conn.execute(
        select(scans)
        .where(_EVERYONE, scans.c.status.in_(ACTIVE_STATUSES))
        .order_by(scans.c.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else summary_from_row(row)


def scan_summary(conn: Connection, scan_id: int) -> ScanSummary | None:
    """One scan by id, or None."""
    row = conn.execute(select(scans).where(scans.c.id == scan_id)).one_or_none()
    return None if row is None else summary_from_row(row)


def last_check(conn: Connection, user_id: str) -> UserCheck | None:
    """The newest ended scan that checked this user (a fleet scan or a scan of this user),
    with what it found; None when no scan has checked them yet."""
    row = conn.execute(
        select(
            scans.c.id,
            scans.c.scope,
            scans.c.status,
            scans.c.requested_by,
            scans.c.finished_at,
            scan_users.c.worst_severity,
        )
        .select_from(scan_users.join(scans, scans.c.id == scan_users.c.scan_id))
        .where(scan_users.c.user_id == user_id, scans.c.status.in_(ENDED_STATUSES))
        .order_by(scans.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    codes = tuple(
        conn.execute(
            select(scan_findings.c.code).where(
                scan_findings.c.scan_id == row.id, scan_findings.c.user_id == user_id
            )
        ).scalars()
    )
    return UserCheck(
        scan_id=row.id,
        scope=row.scope,
        status=row.status,
        requested_by=row.requested_by,
        finished_at=row.finished_at,
        worst_severity=row.worst_severity,
        codes=tuple(sorted(codes, key=lambda code: CODE_ORDER.get(code, 99))),
    )


def pending_checks(conn: Connection, user_id: str) -> list[ScanSummary]:
    """Queued or running scans that will check this user: the fleet scan, or a scan of
    some users that names them."""
    rows = conn.execute(
        select(scans)
        .where(
            scans.c.status.in_(ACTIVE_STATUSES),
            _EVERYONE | scans.c.options["user_ids"].contains([user_id]),
        )
        .order_by(scans.c.id)
    )
    return [summary_from_row(row) for row in rows]


def latest_findings(conn: Connection, user_ids: Sequence[str]) -> dict[str, tuple[Finding, ...]]:
    """Each user's findings in their latest finished scan, most serious first; () for a
    user that scan found healthy or that no finished scan looked at."""
    found: dict[str, tuple[Finding, ...]] = {user_id: () for user_id in user_ids}
    chosen = _scan_of_users(conn, found)
    if not chosen:
        return found
    rows = conn.execute(
        select(scan_findings).where(
            tuple_(scan_findings.c.scan_id, scan_findings.c.user_id).in_(
                [(scan_id, user_id) for user_id, scan_id in chosen.items()]
            )
        )
    )
    grouped: dict[str, list[Finding]] = {}
    for row in rows:
        grouped.setdefault(row.user_id, []).append(finding_from_row(row))
    for user_id, findings in grouped.items():
        found[user_id] = tuple(sorted(findings, key=_finding_order))
    return found


def worst_by_user(conn: Connection, user_ids: Sequence[str]) -> dict[str, str | None]:
    """Each user's worst severity in their latest finished scan (None: healthy or not
    scanned)."""
    worst: dict[str, str | None] = {user_id: None for user_id in user_ids}
    view = _view(conn)
    if not view.scan_ids or not worst:
        return worst
    rows = conn.execute(
        select(scan_users.c.user_id, scan_users.c.worst_severity)
        .where(scan_users.c.scan_id.in_(view.scan_ids), scan_users.c.user_id.in_(list(worst)))
        .order_by(scan_users.c.scan_id)
    )
    for row in rows:  # ascending scan ids: the newest wins
        worst[row.user_id] = row.worst_severity
    return worst


def checked_users(conn: Connection, user_ids: Sequence[str]) -> set[str]:
    """Which of these users some ended scan has checked ("not scanned yet" is the rest)."""
    return set(_scan_of_users(conn, user_ids))


def user_ids_with(
    conn: Connection, *, codes: Sequence[str] = (), severities: Sequence[str] = ()
) -> list[str]:
    """Users with findings in their latest finished scan that include ANY of ``codes``
    and ANY of ``severities`` (not necessarily the same finding); an empty filter does
    not restrict its dimension, so with neither every user with a finding. Sorted."""
    view = _view(conn)
    if view.base is None and not view.newer:
        return []
    current = _current_findings(view)
    by_code = select(current.c.user_id).where(current.c.code.in_(list(codes)))
    by_severity = select(current.c.user_id).where(current.c.severity.in_(list(severities)))
    if codes and severities:
        picked = intersect(by_code, by_severity).subquery()
    elif codes:
        picked = by_code.distinct().subquery()
    elif severities:
        picked = by_severity.distinct().subquery()
    else:
        picked = select(current.c.user_id).distinct().subquery()
    return list(conn.execute(select(picked.c.user_id).order_by(picked.c.user_id)).scalars())


def counts_by_code(conn: Connection, scan_id: int | None = None) -> list[CodeCount]:
    """Users per code in one scan (default: the latest finished scan, as above), most
    serious first, then in the vocabulary's order."""
    if scan_id is not None:
        source = select(scan_findings).where(scan_findings.c.scan_id == scan_id).subquery()
    else:
        view = _view(conn)
        if view.base is None and not view.newer:
            return []
        source = _current_findings(view)
    rows = conn.execute(
        select(source.c.code, source.c.severity, func.count().label("users")).group_by(
            source.c.code, source.c.severity
        )
    )
    counts = [CodeCount(row.code, row.severity, int(row.users)) for row in rows]
    return sorted(counts, key=lambda count: _code_order(count.code, count.severity))


def trend(conn: Connection, *, limit_scans: int = 20) -> list[TrendPoint]:
    """Users per code over the last ``limit_scans`` finished scans of everyone, oldest
    first; a code seen in any of them has a point (maybe 0) in each."""
    picked = conn.execute(
        select(scans.c.id, scans.c.finished_at)
        .where(scans.c.status == "finished", _EVERYONE)
        .order_by(scans.c.id.desc())
        .limit(max(0, limit_scans))
    ).all()
    if not picked:
        return []
    counts: dict[tuple[int, str], int] = {}
    severity_of: dict[str, str] = {}
    for row in conn.execute(
        select(
            scan_findings.c.scan_id,
            scan_findings.c.code,
            scan_findings.c.severity,
            func.count().label("users"),
        )
        .where(scan_findings.c.scan_id.in_([row.id for row in picked]))
        .group_by(scan_findings.c.scan_id, scan_findings.c.code, scan_findings.c.severity)
    ):
        counts[(row.scan_id, row.code)] = counts.get((row.scan_id, row.code), 0) + row.users
        severity_of.setdefault(row.code, row.severity)
    codes = sorted(severity_of, key=lambda code: _code_order(code, severity_of[code]))
    return [
        TrendPoint(row.id, row.finished_at, code, severity_of[code], counts.get((row.id, code), 0))
        for row in reversed(picked)
        for code in codes
    ]


def worst_users(conn: Connection, *, limit: int = 20) -> list[WorstUser]:
    """The users with the most serious findings in their latest finished scan: by worst
    severity, then number of findings, then id."""
    view = _view(conn)
    if view.base is None and not view.newer:
        return []
    current = _current_users(view)
    rank = case(_SEVERITY_RANK, value=current.c.worst_severity, else_=len(_SEVERITY_RANK))
    top = conn.execute(
        select(
            current.c.scan_id, current.c.user_id, current.c.worst_severity, current.c.finding_count
        )
        .where(current.c.worst_severity.is_not(None))
        .order_by(rank, current.c.finding_count.desc(), current.c.user_id)
        .limit(max(0, limit))
    ).all()
    if not top:
        return []
    codes: dict[str, list[str]] = {}
    for row in conn.execute(
        select(scan_findings.c.user_id, scan_findings.c.code, scan_findings.c.severity).where(
            tuple_(scan_findings.c.scan_id, scan_findings.c.user_id).in_(
                [(row.scan_id, row.user_id) for row in top]
            )
        )
    ):
        codes.setdefault(row.user_id, []).append(row.code)
    return [
        WorstUser(
            row.user_id,
            row.worst_severity,
            tuple(
                sorted(
                    codes.get(row.user_id, ()),
                    key=lambda code: CODE_ORDER.get(code, len(CODE_ORDER)),
                )
            ),
            row.finding_count,
        )
        for row in top
    ]


def finding_from_row(row: Row[Any]) -> Finding:
    """A ``Finding`` rebuilt from an ``ops.scan_findings`` row."""
    fix: Mapping[str, Any] = row.fix if isinstance(row.fix, Mapping) else {}
    action = fix.get("action")
    try:
        repair = RepairAction(action) if action else None
    except ValueError:  # an action this version of the console no longer offers
        repair = None
    evidence = row.evidence if isinstance(row.evidence, Mapping) else {}
    return Finding(
        code=row.code,
        severity=Severity(row.severity),
        title=row.title,
        evidence=dict(evidence),
        fix=Fix(repair, str(fix.get("text") or "")),
    )


# -- the latest finished scan, per user -----------------------------------------------------


def _view(conn: Connection) -> _View:
    base = conn.execute(
        select(func.max(scans.c.id)).where(scans.c.status == "finished", _EVERYONE)
    ).scalar_one_or_none()
    newer = conn.execute(
        select(scans.c.id)
        .where(
            scans.c.status.in_(ENDED_STATUSES), scans.c.id > (base or 0), scans.c.users_scanned > 0
        )
        .order_by(scans.c.id)
    ).scalars()
    return _View(base, tuple(newer))


def _scan_of_users(conn: Connection, user_ids: Iterable[str]) -> dict[str, int]:
    """user -> the id of their latest finished scan (users no such scan looked at are
    left out)."""
    wanted = list(user_ids)
    view = _view(conn)
    if not view.scan_ids or not wanted:
        return {}
    rows = conn.execute(
        select(scan_users.c.user_id, func.max(scan_users.c.scan_id).label("id"))
        .where(scan_users.c.scan_id.in_(view.scan_ids), scan_users.c.user_id.in_(wanted))
        .group_by(scan_users.c.user_id)
    )
    return {row.user_id: int(row.id) for row in rows}


def _current_users(view: _View) -> Subquery:
    """``scan_users`` rows of each user's latest finished scan."""
    if not view.newer:
        return select(scan_users).where(scan_users.c.scan_id == view.base).subquery("current")
    overlay = (
        select(scan_users)
        .where(scan_users.c.scan_id.in_(view.newer))
        .distinct(scan_users.c.user_id)
        .order_by(scan_users.c.user_id, scan_users.c.scan_id.desc())
    ).subquery("overlay")
    kept = select(scan_users).where(
        scan_users.c.scan_id == view.base, scan_users.c.user_id.not_in(select(overlay.c.user_id))
    )
    return union_all(kept, select(overlay)).subquery("current")


def _current_findings(view: _View) -> Subquery:
    """``scan_findings`` rows of each user's latest finished scan."""
    if not view.newer:
        return (
            select(scan_findings)
            .where(scan_findings.c.scan_id == view.base)
            .subquery("current_findings")
        )
    users = _current_users(view)
    return (
        select(scan_findings)
        .join(
            users,
            and_(
                users.c.scan_id == scan_findings.c.scan_id,
                users.c.user_id == scan_findings.c.user_id,
            ),
        )
        .subquery("current_findings")
    )


def _code_order(code: str, severity: str) -> tuple[int, int, str]:
    return (
        _SEVERITY_RANK.get(severity, len(_SEVERITY_RANK)),
        CODE_ORDER.get(code, len(CODE_ORDER)),
        code,
    )


def _finding_order(finding: Finding) -> tuple[int, int, str]:
    return _code_order(finding.code, finding.severity.value)
