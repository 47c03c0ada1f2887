"""A retrain's states and every transition between them (``core.machines``).

The paid step is ``creating``: the run that moves a retrain there holds a lease
(``core.leases``) while it sends the one training create. Nobody may declare that create
lost while the lease is live; once it lapsed (its run died), one run takes the lease over,
searches Replicate's trainings for it (same trainer version, the ZIP's unique URL) and
either attaches what it finds or ends the retrain ``lost`` (nothing was paid), never both.
``active`` (one per user, a partial unique index) is cleared by every transition into an
ended state and by the decision.
"""

from __future__ import annotations

from core.machines import Machine, State, Transition
from core.retrain.tables import retrains

WORKER = "a worker's retrain job"
RECOVERY = "the maintenance job"
ADMIN = "an admin"
ENDED = ("succeeded", "failed", "canceled", "aborted", "lost")

RETRAIN = Machine(
    name="retrain",
    table=retrains,
    states=(
        State(
            "draft",
            "photos being chosen and checked",
            owner="the admin who opened it (its checks: the retrain.check job)",
            recovery="queue retrain.check again for photos not measured yet",
        ),
        State(
            "submitting",
            "confirmed: the ZIP being built and uploaded (under a lease)",
            owner="the retrain.submit job holding the lease",
            recovery="queue retrain.submit again once no job holds it and the lease lapsed",
        ),
        State(
            "creating",
            "the one training create claimed, under a lease: sent, or about to be",
            owner="the run holding the lease",
            recovery="after the lease lapsed: take it over, search Replicate's trainings "
            "for the create, attach it or end the retrain lost",
        ),
        State(
            "starting",
            "the training exists on Replicate and has not started",
            owner="the retrain.follow job",
            recovery="queue retrain.follow again",
        ),
        State(
            "processing",
            "the training runs (step N/M from its logs)",
            owner="the retrain.follow job",
            recovery="queue retrain.follow again",
        ),
        State(
            "succeeded",
            "the new version is recorded; the promotion gate's comparison runs, then an "
            "admin promotes or keeps (terminal once decided)",
            owner="the retrain.follow job until the gate is read, then an admin",
            recovery="queue retrain.follow again while the gate is not read",
        ),
        State("failed", "ended without a version: refused, failed or not built"),
        State("canceled", "cancelled before it was sent, or on Replicate"),
        State("aborted", "Replicate aborted the training before it ran"),
        State("lost", "the create's answer was lost and Replicate lists no such training"),
    ),
    transitions=(
        Transition("confirm", ("draft",), "submitting", ADMIN),
        Transition("claim_upload", ("submitting",), None, WORKER),
        Transition("uploaded", ("submitting",), None, "the run holding the lease"),
        Transition("upload_failed", ("submitting",), "failed", "the run holding the lease"),
        Transition("cancel_unsent", ("submitting",), "canceled", ADMIN),
        Transition("claim_create", ("submitting",), "creating", "the run holding the lease"),
        Transition("refused", ("creating",), "failed", "the run holding the lease"),
        Transition("not_sent", ("creating",), "failed", "the run holding the lease"),
        Transition("created", ("creating",), "starting", "the run holding the lease"),
        Transition("take_over", ("creating",), None, f"{WORKER}, once the lease lapsed"),
        Transition("found", ("creating",), "starting", "the run that took the lease over"),
        Transition("not_found", ("creating",), "lost", "the run that took the lease over"),
        Transition("polled", ("starting", "processing"), None, WORKER),
        Transition("running", ("starting", "processing"), "processing", WORKER),
        Transition("trained", ("starting", "processing"), "succeeded", WORKER),
        Transition("training_failed", ("starting", "processing"), "failed", WORKER),
        Transition("training_canceled", ("starting", "processing"), "canceled", WORKER),
        Transition("training_aborted", ("starting", "processing"), "aborted", WORKER),
        Transition("gate_started", ("succeeded",), None, WORKER),
        Transition("gate_read", ("succeeded",), None, WORKER),
        Transition("decide", ("succeeded",), None, f"{ADMIN} (or the gate, when allowed)"),
    ),
)

# How a training's end on Replicate moves its retrain.
ENDED_BY_REPLICATE = {
    "succeeded": "trained",
    "failed": "training_failed",
    "canceled": "training_canceled",
    "aborted": "training_aborted",
}
