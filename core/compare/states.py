"""A comparison's and a comparison image's states, and every transition (``core.machines``).

An image's paid step is ``creating``: the run that claims it holds a lease (``core.leases``)
while it sends the one prediction create. ``lost`` is the same claim while its create's
answer is being looked for on Replicate. Nobody may declare a create lost while its lease
is live; once it lapsed (its run died), one run takes it over, searches the account's
predictions (same version, seed and prompt, created since the claim, held by no other
image) and attaches what it finds or fails the image saying nothing was paid, never both.

A comparison is ``running`` while any of its images has not ended or is not scored; the
transaction that ends or scores its last image finishes it, once.
"""

from __future__ import annotations

from core.compare.tables import comparison_images, comparisons
from core.machines import Machine, State, Transition

WORKER = "a worker's compare job"
LEASE_HOLDER = "the run holding the lease"
PERSON = "the person who asked, or an admin"

COMPARISON = Machine(
    name="comparison",
    table=comparisons,
    states=(
        State(
            "queued",
            "asked for and confirmed; its start job waits",
            owner="the compare.start job",
            recovery="queue compare.start again",
        ),
        State(
            "running",
            "its images are being created, followed and scored",
            owner="its images' jobs",
            recovery="each open image's step queued again; once every image ended and is "
            "scored, finished there and then",
        ),
        State("finished", "every image ended and every succeeded one is scored: the verdict"),
        State("cancelled", "stopped by a person; what was sent is cancelled on Replicate"),
    ),
    transitions=(
        Transition("start", ("queued",), "running", WORKER),
        Transition("beat", ("queued", "running"), None, WORKER),
        Transition(
            "finish", ("running",), "finished", "the job that ends or scores the last image"
        ),
        Transition("reopen", ("running", "finished"), "running", f"{PERSON} (retrying an image)"),
        Transition("cancel", ("queued", "running"), "cancelled", PERSON),
        Transition("release", ("finished", "cancelled", "running"), None, WORKER),
    ),
)

IMAGE = Machine(
    name="comparison image",
    table=comparison_images,
    states=(
        State(
            "pending",
            "waiting for its create",
            owner="the compare.predict job",
            recovery="queue compare.predict again",
        ),
        State(
            "creating",
            "the prediction create claimed, under a lease: sent, or about to be",
            owner=LEASE_HOLDER,
            recovery="after the lease lapsed: take it over, search Replicate's predictions, "
            "attach what is found or fail it saying nothing was paid",
        ),
        State(
            "lost",
            "the create's answer was lost: Replicate is being searched for it (under a lease)",
            owner=LEASE_HOLDER,
            recovery="as creating",
        ),
        State(
            "starting",
            "the prediction exists and has not started",
            owner="the compare.follow job",
            recovery="queue compare.follow again",
        ),
        State(
            "processing",
            "the prediction runs",
            owner="the compare.follow job",
            recovery="queue compare.follow again",
        ),
        State(
            "succeeded",
            "its image is kept (a preview) and scored; until scored, still owned",
            owner="the compare.score job until its scores are written",
            recovery="queue compare.score again while it has no scores",
        ),
        State("failed", "ended without an image (the reason says why and whether it was paid)"),
        State("canceled", "cancelled with its comparison, or after its timeout"),
        State("aborted", "Replicate aborted the prediction"),
    ),
    transitions=(
        Transition("claim", ("pending",), "creating", WORKER),
        Transition("created", ("creating",), "starting", LEASE_HOLDER),
        Transition("refused", ("creating",), "failed", LEASE_HOLDER),
        Transition("answer_lost", ("creating",), "lost", LEASE_HOLDER),
        Transition("take_over", ("creating", "lost"), "lost", f"{WORKER}, once the lease lapsed"),
        Transition("found", ("lost",), "starting", LEASE_HOLDER),
        Transition("not_found", ("lost",), "failed", LEASE_HOLDER),
        Transition("polled", ("starting", "processing"), None, WORKER),
        Transition("running", ("starting", "processing"), "processing", WORKER),
        Transition("image_kept", ("starting", "processing"), "succeeded", WORKER),
        Transition("prediction_failed", ("starting", "processing"), "failed", WORKER),
        Transition("prediction_canceled", ("starting", "processing"), "canceled", WORKER),
        Transition("prediction_aborted", ("starting", "processing"), "aborted", WORKER),
        Transition("scored", ("succeeded",), None, WORKER),
        Transition("cancel_unsent", ("pending",), "canceled", PERSON),
        Transition(
            "cancel_sent",
            ("creating", "lost", "starting", "processing"),
            "canceled",
            "the compare.cancel job",
        ),
        Transition("retry", ("failed", "canceled", "aborted"), "pending", PERSON),
    ),
)

# How a prediction's end on Replicate moves its image (a success is ``image_kept``, once
# its image is read).
ENDED_BY_REPLICATE = {
    "failed": "prediction_failed",
    "canceled": "prediction_canceled",
    "aborted": "prediction_aborted",
}
