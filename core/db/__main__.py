"""``python -m core.db {upgrade,url,stop}`` (from the project folder)::

python -m core.db upgrade   # DEMO: start the embedded server, create app tables; migrate ops
python -m core.db url       # the database URL (DEMO: the embedded server's, no password)
python -m core.db stop      # DEMO: stop the worker and the embedded server (they
                            # outlive the console)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from core.config import Mode, get_settings
from core.db import (
    create_app_tables,
    embedded_postgres_url,
    make_engine,
    redacted_url,
    stop_embedded_postgres,
    upgrade_ops,
)
from core.errors import ConfigError

# The command line, not ``core.db``, knows DEMO's worker: it needs the database, so
# ``stop`` stops it before the server (and the jobs package depends on db, not back).
from core.jobs.service import stop_worker


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.db {upgrade,url,stop}``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m core.db",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("upgrade", "url", "stop"))
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        if args.action == "stop":
            if settings.mode is Mode.LIVE:
                raise ConfigError("Nothing to stop in LIVE: the database is the app's.")
            if stop_worker(settings.data_dir):
                _say("worker stopped")
            stopped = stop_embedded_postgres(settings.data_dir)
            _say("stopped" if stopped else f"no embedded server running in {settings.data_dir}")
            return 0
        if settings.mode is Mode.DEMO:
            app_url = ops_url = embedded_postgres_url(settings.data_dir)
        else:
            assert settings.database_url is not None
            ops_secret = settings.effective_ops_database_url
            assert ops_secret is not None
            app_url, ops_url = (
                settings.database_url.get_secret_value(),
                ops_secret.get_secret_value(),
            )
        if args.action == "url":
            _say(redacted_url(app_url))
            return 0
        if settings.mode is Mode.DEMO:
            engine = make_engine(app_url)
            try:
                create_app_tables(engine, mode=settings.mode)
            finally:
                engine.dispose()
        upgrade_ops(ops_url)
        _say(f"schema ops is at head in {redacted_url(ops_url)} ({settings.mode.value})")
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}{os.linesep}")
        return 2


def _say(message: str) -> None:
    sys.stdout.write(message + os.linesep)


if __name__ == "__main__":
    raise SystemExit(main())
