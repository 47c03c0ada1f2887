"""The sandbox's durable state: one SQLite file plus blobs on disk, under the data dir.

Documents are kept as the JSON Replicate would send, with ``BASE`` standing where the
server's own address goes, so state written on one port is still right when the
sandbox restarts on another. Every method takes the one lock: the server's handler
threads and its clock thread share a single connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BASE = "__SANDBOX_BASE__"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY, model_key TEXT NOT NULL, seq INTEGER NOT NULL,
    doc TEXT NOT NULL, extra TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS versions_by_model ON versions (model_key, seq);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, seq INTEGER NOT NULL, active INTEGER NOT NULL,
    doc TEXT NOT NULL, extra TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_kind ON jobs (kind, seq);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (active) WHERE active = 1;
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, profile TEXT NOT NULL, photo_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    path TEXT PRIMARY KEY, content_type TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Doc = dict[str, Any]


def dump(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


class Store:
    """SQLite tables for models, versions, jobs (trainings and predictions), files,
    datasets, blobs and settings, and a folder tree for the bytes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("files", "datasets", "delivery", "blobs"):
            (data_dir / sub).mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            data_dir / "sandbox.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._seq = max(
            self._scalar("SELECT coalesce(max(seq), 0) FROM models"),
            self._scalar("SELECT coalesce(max(seq), 0) FROM versions"),
            self._scalar("SELECT coalesce(max(seq), 0) FROM jobs"),
            self._scalar("SELECT coalesce(max(seq), 0) FROM files"),
        )

    # -- plumbing -------------------------------------------------------------------
    def _scalar(self, sql: str, *args: Any) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row else 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes that land together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save_snapshot(self, name: str) -> None:
        """Keep the state as it is now under ``name`` (a copy of the SQLite file; the bytes
        on disk are never changed once written, so they need no copy)."""
        folder = self.data_dir / "snapshots"
        folder.mkdir(exist_ok=True)
        with self._lock:
            target = sqlite3.connect(folder / f"{name}.sqlite3")
            try:
                self._db.backup(target)
            finally:
                target.close()

    def restore_snapshot(self, name: str) -> None:
        """Put back the state saved under ``name`` (``KeyError`` when there is none). Ids
        keep counting up from where they are, so listings stay newest first."""
        path = self.data_dir / "snapshots" / f"{name}.sqlite3"
        if not path.exists():
            raise KeyError(name)
        with self._lock:
            source = sqlite3.connect(path)
            try:
                source.backup(self._db)
            finally:
                source.close()

    def wipe(self) -> None:
        """Forget everything (the reset control); the caller re-seeds the catalogue."""
        with self._lock:
            for table in ("models", "versions", "jobs", "files", "datasets", "blobs", "settings"):
                self._db.execute(f"DELETE FROM {table}")
            self._seq = 0

    # -- models and versions ----------------------------------------------------------
    def get_model(self, key: str) -> Doc | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM models WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_model(self, key: str, doc: Doc) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO models (key, seq, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET doc = excluded.doc",
                (key, self.next_seq(), dump(doc)),
            )

    def delete_model(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM models WHERE key = ?", (key,))

    def latest_version(self, model_key: str) -> tuple[Doc, Doc] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc, extra FROM versions WHERE model_key = ? ORDER BY seq DESC LIMIT 1",
                (model_key,),
            ).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def versions_page(
        self, model_key: str, before_seq: int | None, limit: int
    ) -> list[tuple[int, Doc]]:
        """Newest first, strictly older than ``before_seq``; one more row than ``limit``
        tells the caller that a next page exists."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, doc FROM versions WHERE model_key = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (model_key, before_seq if before_seq is not None else 2**62, limit + 1),
            ).fetchall()
        return [(int(seq), json.loads(doc)) for seq, doc in rows]

    def count_versions(self, model_key: str) -> int:
        with self._lock:
            return self._scalar("SELECT count(*) FROM versions WHERE model_key = ?", model_key)

    def get_version(self, version_id: str) -> tuple[str, Doc, Doc] | None:
        """(model key, public doc, sandbox-only facts) of a version, by its id alone."""
        with self._lock:
            row = self._db.execute(
                "SELECT model_key, doc, extra FROM versions WHERE id = ?", (version_id,)
            ).fetchone()
        return (row[0], json.loads(row[1]), json.loads(row[2])) if row else None

    def put_version(self, model_key: str, doc: Doc, extra: Doc) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO versions (id, model_key, seq, doc, extra) VALUES (?, ?, ?, ?, ?)",
                (doc["id"], model_key, self.next_seq(), dump(doc), dump(extra)),
            )

    def replace_version(self, version_id: str, doc: Doc, extra: Doc) -> None:
        """Change a stored version in place: its model and its place in the list stay."""
        with self._lock:
            self._db.execute(
                "UPDATE versions SET doc = ?, extra = ? WHERE id = ?",
                (dump(doc), dump(extra), version_id),
            )

    def delete_version(self, version_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM versions WHERE id = ?", (version_id,))

    # -- trainings and predictions ------------------------------------------------------
    def get_job(self, kind: str, job_id: str) -> tuple[Doc, Doc] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc, extra FROM jobs WHERE id = ? AND kind = ?", (job_id, kind)
            ).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def put_job(self, kind: str, doc: Doc, extra: Doc, *, active: bool) -> None:
        with self._lock:
            exists = self._db.execute("SELECT 1 FROM jobs WHERE id = ?", (doc["id"],)).fetchone()
            if exists:
                self._db.execute(
                    "UPDATE jobs SET doc = ?, extra = ?, active = ? WHERE id = ?",
                    (dump(doc), dump(extra), int(active), doc["id"]),
                )
            else:
                self._db.execute(
                    "INSERT INTO jobs (id, kind, seq, active, doc, extra) VALUES (?,?,?,?,?,?)",
                    (doc["id"], kind, self.next_seq(), int(active), dump(doc), dump(extra)),
                )

    def jobs_page(self, kind: str, before_seq: int | None, limit: int) -> list[tuple[int, Doc]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, doc FROM jobs WHERE kind = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                (kind, before_seq if before_seq is not None else 2**62, limit + 1),
            ).fetchall()
        return [(int(seq), json.loads(doc)) for seq, doc in rows]

    def active_job_ids(self) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT kind, id FROM jobs WHERE active = 1").fetchall()
        return [(str(kind), str(job_id)) for kind, job_id in rows]

    def count_jobs(self, kind: str) -> int:
        with self._lock:
            return self._scalar("SELECT count(*) FROM jobs WHERE kind = ?", kind)

    # -- files, datasets, blobs, settings -------------------------------------------------
    def put_file(self, doc: Doc) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO files (id, seq, doc) VALUES (?, ?, ?)",
                (doc["id"], self.next_seq(), dump(doc)),
            )

    def get_file(self, file_id: str) -> Doc | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM files WHERE id = ?", (file_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_files(self) -> list[Doc]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM files ORDER BY seq DESC").fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def put_dataset(self, dataset_id: str, profile: Doc, photo_count: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO datasets (id, profile, photo_count) VALUES (?, ?, ?)",
                (dataset_id, dump(profile), photo_count),
            )

    def get_dataset(self, dataset_id: str) -> tuple[Doc, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT profile, photo_count FROM datasets WHERE id = ?", (dataset_id,)
            ).fetchone()
        return (json.loads(row[0]), int(row[1])) if row else None

    def put_blob(self, path: str, content_type: str, size: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO blobs (path, content_type, size) VALUES (?, ?, ?) ON CONFLICT (path)"
                " DO UPDATE SET content_type = excluded.content_type, size = excluded.size",
                (path, content_type, size),
            )

    def get_blob(self, path: str) -> str | None:
        """The content type of a stored blob, None when there is none at ``path``."""
        with self._lock:
            row = self._db.execute(
                "SELECT content_type FROM blobs WHERE path = ?", (path,)
            ).fetchone()
        return str(row[0]) if row else None

    def get_setting(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
