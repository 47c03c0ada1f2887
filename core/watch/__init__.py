"""The watch: every WATCH_INTERVAL_SECONDS a worker reads what is new on Replicate since
the last look and queues a retrain review for each user whose training ended since.

``decisions`` holds the pure rules (when a pass is due, what a pass asks Replicate, which
ended trainings get a review); ``run`` the I/O around them; ``tasks`` the periodic job;
``python -m core.watch`` one pass in the foreground. The review itself is a later step:
for now a queued review is a row of ``ops.retrain_reviews``.
"""
