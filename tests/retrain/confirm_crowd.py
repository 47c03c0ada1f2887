"""``python -m tests.retrain.confirm_crowd DATABASE_URL RETRAIN_ID PROCESS``: ten admins in
this process confirm one retrain at once (the races test runs two of these); prints each
one's outcome as a JSON list ("confirmed" or "refused")."""

from __future__ import annotations

import json
import sys
import threading
import uuid

from core.db import make_engine
from core.errors import Conflict
from core.retrain.submit import confirm
from core.roles import Actor, Role

THREADS = 10


def main(database_url: str, retrain_id: int, process: int) -> list[str]:
    engine = make_engine(database_url, pool_size=THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def one(index: int) -> None:
        actor = Actor(f"admin{process * THREADS + index}@staff.test", Role.ADMIN)
        start.wait(timeout=30)
        try:
            with engine.begin() as conn:
                confirm(conn, actor, retrain_id, confirm_token=uuid.uuid4().hex, reason="crowd")
            outcome = "confirmed"
        except Conflict:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    return outcomes


if __name__ == "__main__":
    url, retrain, process_number = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.stdout.write(json.dumps(main(url, retrain, process_number)))
