"""Long work off the page: the procrastinate job queue on the console's PostgreSQL.

``core.jobs.app`` holds the one procrastinate ``App`` (its tables live in schema ``ops``,
installed by migration 0004) and ``defer``, which puts a job in the queue inside the
caller's transaction. ``core.jobs.tasks`` registers the tasks (thin: each calls a core
service). ``core.jobs.worker`` runs a worker (``python -m core.worker``); any number of
workers on any number of machines share one queue. ``core.jobs.status`` reads the queue
for the sidebar; ``core.jobs.service`` keeps DEMO's one detached worker process alive.
"""
