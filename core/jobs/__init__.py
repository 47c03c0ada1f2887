"""Long work off the page: the procrastinate job queue on the console's PostgreSQL.

``core.jobs.app`` holds the one procrastinate ``App`` (its tables live in schema ``ops``,
installed by migration 0004), the names of every task and queue, and ``defer``, which
puts a job in the queue inside the caller's transaction. ``core.jobs.context`` is what
every task finds in its job's context (the worker's services). ``core.jobs.worker`` is
the worker loop that outlives the database; ``core.jobs.status`` reads the queue for the
sidebar; ``core.jobs.service`` keeps DEMO's one detached worker process alive.

This package knows no domain: every domain imports it. The tasks live in their domains
(``core/scan/tasks.py`` …, each a procrastinate blueprint), the maintenance job in
``core/maintenance.py``; ``core.tasks`` registers them all and ``core.worker`` runs them.
"""
