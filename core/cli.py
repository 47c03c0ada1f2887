"""What the console's command-line tools share: who acts, starting the runtime with their
exit statuses, notes on stderr, and bringing the training history up to date first."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from core.config import Mode, Settings, get_settings
from core.errors import ConfigError, DashboardError, ReplicateError
from core.ledger.sync import sync_ledger
from core.runtime import BATCH, Runtime, start_runtime
from core.staff import DEMO_ADMIN

Note = Callable[[str], None]

EXIT_FAILED = 1  # the work (or starting the console) failed
EXIT_CONFIG = 2  # the settings are wrong: nothing was tried


def note(message: str) -> None:
    """A progress or warning line for the person at the terminal (stderr: stdout is the
    result, JSON with ``--json``)."""
    sys.stderr.write(message + os.linesep)


def actor_email(given: str | None, mode: Mode) -> str:
    """Whom a command line that writes or spends acts as, before the staff check
    (``core.staff.staff_actor``): ``--actor``, or in DEMO its built-in admin. LIVE has no
    default: ``ConfigError`` (nothing is tried)."""
    if given:
        return given
    if mode is Mode.DEMO:
        return DEMO_ADMIN.email
    raise ConfigError(
        "--actor EMAIL is required in LIVE: the staff member asking, as on ops.staff (their "
        "role is checked and the audit log names them)."
    )


def start_cli_runtime(*, start_worker: bool) -> tuple[Settings, Runtime] | int:
    """The settings and a started runtime (DEMO seeded; Replicate with the batch policy),
    or the exit status after saying on stderr why it could not start."""
    try:
        settings = get_settings()
        runtime = start_runtime(
            settings,
            seed_demo=settings.mode is Mode.DEMO,
            progress=note,
            replicate=BATCH,
            start_worker=start_worker,
        )
    except ConfigError as exc:
        note(f"error: {exc}")
        return EXIT_CONFIG
    except DashboardError as exc:
        note(f"error: the console could not start: {exc}")
        return EXIT_FAILED
    return settings, runtime


def refresh_ledger(runtime: Runtime, say: Note = note) -> None:
    """Bring the training history up to date (new versions since the last scan); when
    Replicate cannot be reached, say so and go on with what is stored."""
    try:
        sync_ledger(
            ops_engine=runtime.ops_engine, app_engine=runtime.engine, gateway=runtime.gateway
        )
    except ReplicateError as exc:
        say(f"the training history could not be refreshed ({exc}); using what is stored")
