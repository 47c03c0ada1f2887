"""User: one user's rows, stored vs latest, the findings checked now (with the fix and, for
admins, the repair), the timeline of trainings and versions, and every version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core import links as links_to
from core.compare.columns import columns_proving, user_versions
from core.drift import Finding
from core.drift.facts import AppRow
from core.drift.words import Namer, evidence_ids, evidence_sentence
from core.errors import DashboardError, Problem, ProblemKind
from core.gateway.values import ModelVersion
from core.live_diagnosis import LiveDiagnosis
from core.redaction import redacted
from core.repairs import repairs_available
from core.retrain.plan import RETRAIN_FINDINGS
from core.roles import Actor, Permission, allowed
from core.text import inert
from core.timeline import build_timeline, how_far_behind, version_lines
from core.versions import Level, normalise_version, version_name
from dashboard import (
    decision_ui,
    diagnosis,
    drift_tables,
    identity,
    loaders,
    messages,
    navigation,
    pictures,
    recent_retrains,
    repair_ui,
    resources,
    retrain_ui,
    scans,
    tables,
)
from dashboard.history import wait_for_history

PHOTOS_POLL_SECONDS = 3.0
GENERATIONS_OPEN = "generations_open"
_SHOW_NOTE = {
    Level.ERROR: messages.error,
    Level.WARNING: messages.warning,
    Level.INFO: messages.info,
    Level.OK: messages.success,
}


def _show_finding(
    actor: Actor,
    finding: Finding,
    user_id: str,
    *,
    buttons: bool,
    versions: int,
    names: Namer,
    retrain_link: bool,
    row: AppRow | None,
) -> None:
    with st.container(border=True):
        st.badge(
            finding.severity.value,
            color=drift_tables.SEVERITY_COLORS.get(finding.severity.value, "gray"),
        )
        st.markdown(f"**{inert(finding.title)}** · `{finding.code}`")
        st.markdown(messages.said(evidence_sentence(finding, names)))
        st.markdown(f"**Fix:** {messages.said(finding.fix.text)}")
        ids = evidence_ids(finding)
        if ids:  # beside the words, for a ticket or Replicate's search
            st.caption(" · ".join(f"{label}: {inert(value)}" for label, value in ids))
        with st.expander("Raw evidence (for engineers)", icon=":material/data_object:"):
            st.dataframe(drift_tables.evidence_frame(finding), hide_index=True)
        proving = columns_proving(finding.code, versions)
        if proving is not None:
            st.page_link(
                navigation.compare_page(),
                label=f"Compare {proving.replace(',', ' · ')} on this user's images",
                icon=":material/compare:",
                query_params={"user": user_id, "columns": proving},
            )
        if finding.code in RETRAIN_FINDINGS and retrain_link:
            st.page_link(
                navigation.retrain_page(),
                label="Retrain with the earlier photos plus new ones (the wizard checks them)",
                icon=":material/model_training:",
                query_params={"user": user_id},
            )
        if buttons:
            repair_ui.repair_button(finding, user_id)
        if row is not None:
            decision_ui.decision_controls(actor, finding, row)


def _outage(problem: str | None) -> bool:
    """Whether a problem is Replicate being down (said once, at the top of the page)."""
    return isinstance(problem, Problem) and problem.kind is ProblemKind.REPLICATE_DOWN


def _replicate_part(problem: str | None, otherwise: str) -> None:
    """Where a part read from Replicate would be: the problem, or a short pointer to the
    banner when Replicate is down."""
    if _outage(problem):
        st.caption("Not read: Replicate is unavailable (see the note at the top).")
    elif problem:
        messages.warning(problem)
    else:
        st.warning(otherwise)


def _show_findings(
    actor: Actor,
    found: LiveDiagnosis,
    *,
    names: Namer,
    may_repair: bool,
    may_retrain: bool,
    repairs_why: str | None,
) -> None:
    if _outage(found.problem):
        st.info(
            "The findings could not be checked now: Replicate is unavailable. The Users "
            "page shows what the last scan found."
        )
    elif found.problem is not None:
        st.warning(f"The findings could not be checked now: {messages.said(found.problem)}")
    for note in found.notes:
        messages.warning(note)
    if found.synced is not None:
        st.caption("This user's trainings were read again from Replicate for this view.")
    if found.history_syncing:
        wait_for_history(before_rerun=diagnosis.forget_facts)
    if not found.findings:
        st.success("No findings: the row, the model and the trainings agree.")
    repairable = any(finding.fix.action is not None for finding in found.findings)
    if repairable and not may_repair:
        st.caption("Repairs are done by an admin; the fix says what they would do.")
    elif repairable and repairs_why is not None:
        st.caption(messages.said(repairs_why))
    versions = len(user_versions(found.facts.trainings)) if found.facts is not None else 0
    decision_ui.show_message()
    for finding in found.findings:
        _show_finding(
            actor,
            finding,
            found.user_id,
            buttons=may_repair and repairs_why is None,
            versions=versions,
            names=names,
            retrain_link=may_retrain,
            # Admins may leave a finding as it is (a decision against the row shown).
            row=found.facts.row if may_repair and found.facts is not None else None,
        )


def _ids(stored: str | None, latest: str | None, row: Mapping[str, Any], names: Namer) -> None:
    """The full ids, each copyable (the code block's copy button), and links to Replicate."""
    model_id = row.get("replicate_model_id")
    with st.expander("Ids and links", icon=":material/content_copy:"):
        if isinstance(model_id, str) and model_id.strip():
            st.caption("the user's model")
            st.code(model_id, language=None)
        if stored:
            st.caption(f"the version the row stores ({names.version(stored)}), exactly as stored")
            st.code(stored, language=None)
        if latest:
            st.caption(f"the model's latest version ({names.version(latest)})")
            st.code(latest, language=None)
        links = []
        if isinstance(model_id, str) and model_id.strip() and "/" in model_id:
            links.append(f"[model]({links_to.model_link(base_url, model_id.strip())})")
            if latest:
                links.append(
                    f"[latest version]({links_to.version_link(base_url, model_id.strip(), latest)})"
                )
        training_id = row.get("training_id")
        if isinstance(training_id, str) and training_id.strip():
            links.append(f"[training]({links_to.training_link(base_url, training_id.strip())})")
        if links:
            st.markdown("On Replicate: " + " · ".join(links))


def _version_words(version: ModelVersion, versions: tuple[ModelVersion, ...]) -> str:
    """A version as staff call it, and when Replicate made it."""
    named = version_name(version.id, versions)
    made = f"{version.created_at:%Y-%m-%d %H:%M} UTC" if version.created_at else "an unknown time"
    return f"{named}, created {made}"


def _last_check_words(user_id: str) -> str:
    """This user's own last check by a scan (the Users and Fleet pages show that), and
    any scan about to check them."""
    check, pending = scans.user_check(user_id)
    if check is None:
        words = "No scan has checked this user yet."
    else:
        kind = "fleet scan" if check.scope == "all" else "rescan"
        found = inert(", ".join(check.codes)) if check.codes else "no finding"
        words = (
            f"Last checked by {kind} #{check.scan_id}"
            f"{f' at {check.finished_at:%Y-%m-%d %H:%M} UTC' if check.finished_at else ''}"
            f": {found}."
        )
    for scan in pending:
        kind = "Fleet scan" if scan.is_fleet else "Rescan"
        words += f" {kind} #{scan.id} ({inert(scan.status)}) will check them again."
    return words


def _photos_note(user_id: str, stored_version: str | None) -> None:
    """While the workers read photos this user's dataset checks need: say so, and draw
    the page again once they are read."""
    try:
        pending = diagnosis.photos_pending(user_id, stored_version)
    except DashboardError as exc:
        st.warning(
            "The photos of this user's trainings could not be queued for reading: "
            + messages.said(exc)
        )
        return
    if not pending:
        return
    st.info(
        f"A worker is reading the photos of {pending} training(s) of this user; the "
        "dataset checks (DATASET_SHRANK, DATASET_DEGRADED) follow when that is done "
        "(seconds). This page updates by itself.",
        icon=":material/hourglass_top:",
    )

    @st.fragment(run_every=PHOTOS_POLL_SECONDS)
    def wait_for_photos() -> None:
        if diagnosis.photos_pending(user_id, stored_version) == 0:
            diagnosis.forget_facts()
            st.rerun(scope="app")

    wait_for_photos()


st.page_link(navigation.users_page(), label="Back to Users", icon=":material/arrow_back:")
user_id = st.query_params.get("user", "").strip()
if not user_id:
    st.title("User")
    st.info("No user chosen. Pick one on the Users page, or open a link like ?user=<id>.")
    st.stop()

actor = identity.current_actor()
try:
    detail = loaders.user_detail(user_id)
    found = diagnosis.user_diagnosis(
        detail.user_id,
        row=detail.record.model_row,
        known_models=detail.known_models(),
    )
except DashboardError as exc:
    st.title("User")
    messages.error(exc)
    st.stop()

record, comparison = detail.record, detail.comparison
model_row = record.model_row or {}
base_url = resources.runtime().replicate_base_url
names = Namer(detail.versions)
email = record.user.get("email")
# The person first (inert: an email would become a mailto link); the id below, to copy.
st.title(inert(email) if isinstance(email, str) and email.strip() else "User without an email")
st.caption(f"User {inert(detail.user_id)} · plan {inert(record.user.get('plan') or '—')}")
st.code(detail.user_id, language=None)
# The watch's verdict on the user's last retrain, first thing under the heading.
recent_retrains.latest_banner(detail.user_id, detail.versions)
if record.model_row is None:
    # Signed up, never trained: nothing is wrong and nothing can drift. One calm note.
    st.info(
        "This user has not trained a model yet: there is no user_models row, so there is "
        "no version, trigger word or training to check. Nothing to repair.",
        icon=":material/hourglass_empty:",
    )
    st.subheader("users row")
    st.dataframe(tables.columns_frame(record.user), hide_index=True)
    st.stop()
_ids(comparison.stored, comparison.latest, model_row, names)
outages = [
    problem
    for problem in (
        detail.model_problem,
        detail.versions_problem,
        detail.training_problem,
        found.problem if found is not None else None,
    )
    if problem is not None and _outage(problem)
]
if outages:  # one banner, not one warning per part
    messages.warning(outages[0], icon=":material/cloud_off:")


def _version_metric(column: Any, label: str, version: str | None, *, none: str, help: str) -> None:
    """A version as a metric: its number large ("v2"), the day it was trained under it,
    then its hash to copy (the whole name does not fit a metric's width)."""
    if not version:
        column.metric(label, none, help=help)
        return
    number, _, day = names.version(version).partition(" · ")
    column.metric(label, inert(number), help=help)
    if day:
        column.caption(inert(day))
    column.code(version, language=None)


status, stored, latest, behind = st.columns(4)
status.metric("training status (row)", inert(model_row.get("training_status") or "—"))
_version_metric(
    stored,
    "stored version",
    normalise_version(comparison.stored),
    none="—",
    help=f"As stored: {inert(repr(comparison.stored))}; the app generates with the part after "
    "the last ':'",
)
_version_metric(
    latest,
    "latest version",
    comparison.latest,
    none=tables.UNKNOWN,
    help="The model's newest version on Replicate",
)
behind.metric(
    "versions behind",
    tables.UNKNOWN if comparison.versions_behind is None else str(comparison.versions_behind),
    help="How many versions newer than the stored one the model has",
)
for note in comparison.notes():
    _SHOW_NOTE[note.level](note.text)
plainly = (
    how_far_behind(comparison.stored, detail.versions, latest=comparison.latest)
    if detail.versions_problem is None
    else None
)
if plainly:
    st.markdown(messages.said(plainly))

st.subheader("Findings")
may_repair = allowed(actor, Permission.REPAIR)
available, why = repairs_available(resources.runtime().settings)
repair_ui.show_result(detail.user_id, may_repair=may_repair)
if found is not None:
    st.caption(
        "Checked now against Replicate and the training history. "
        + _last_check_words(detail.user_id)
    )
    _photos_note(detail.user_id, comparison.stored)
    _show_findings(
        actor,
        found,
        names=names,
        may_repair=may_repair,
        may_retrain=allowed(actor, Permission.RETRAIN),
        repairs_why=None if available else why,
    )
    if may_repair and available:
        repair_ui.open_dialogs(actor, detail.user_id, found.facts)

facts = found.facts if found is not None else None
trainings = facts.trainings if facts is not None else ()
st.subheader("Timeline")
if not trainings and not detail.versions:
    st.info("No training of this user is in the training history, and the model has no versions.")
else:
    st.caption(
        "Trainings and versions, oldest first: each training's photos (from its ZIP) "
        "and what its parameters changed since the previous succeeded training."
    )
    st.dataframe(
        drift_tables.timeline_frame(build_timeline(trainings, detail.versions)),
        column_config=drift_tables.timeline_columns(),
        hide_index=True,
    )

st.subheader("Retrains run from this console")
try:
    retrains_run = retrain_ui.history(detail.user_id)
except DashboardError as exc:
    retrains_run = []
    st.warning(f"The console's retrains could not be read: {messages.said(exc)}")
if retrains_run:
    st.dataframe(retrain_ui.history_frame(retrains_run), hide_index=True)
else:
    st.caption(
        "None: the retrains the wizard runs for this user (who, why, photos, gate, "
        "decision) show here."
    )
if allowed(actor, Permission.RETRAIN):
    st.page_link(
        navigation.retrain_page(),
        label="Open the retrain wizard",
        icon=":material/model_training:",
        query_params={"user": detail.user_id},
    )

st.subheader("Pictures")
with st.expander("Training photos, each training's ZIP", icon=":material/photo_library:"):
    pictures.training_photos(trainings)
# Each generation is downloaded to make its thumbnail: only when someone opens them.
recent = st.expander(
    "Recent generations", icon=":material/image:", key=GENERATIONS_OPEN, on_change="rerun"
)
with recent:
    if recent.open:
        pictures.generations(detail.user_id)
    else:
        st.caption("Open to read the user's newest images.")

st.subheader("Versions")
if detail.versions_problem is not None:
    _replicate_part(detail.versions_problem, "The versions could not be read.")
elif not detail.versions:
    st.info("The model has no versions: no training into it has succeeded.")
else:
    lines = version_lines(
        detail.versions, trainings, stored=comparison.stored, latest=comparison.latest
    )
    st.dataframe(
        drift_tables.version_lines_frame(lines),
        column_config=drift_tables.version_lines_columns(),
        hide_index=True,
    )

database, replicate = st.columns(2, gap="large")
with database:
    st.subheader("users row")
    st.dataframe(tables.columns_frame(record.user), hide_index=True)
    st.subheader("user_models row")
    st.dataframe(tables.columns_frame(record.model_row), hide_index=True, height="content")

with replicate:
    st.subheader("Replicate model")
    if detail.model is None:
        _replicate_part(detail.model_problem, "No model.")
    else:
        model = detail.model
        st.markdown(
            f"[**{inert(model.key)}**]({links_to.model_link(base_url, model.key)}) · "
            f"{inert(model.visibility)} · {inert(model.run_count)} runs"
        )
        newest = detail.latest_version
        if newest is not None:
            st.markdown(
                f"Latest version: {inert(_version_words(newest, detail.versions))} "
                f"([open on Replicate]({links_to.version_link(base_url, model.key, newest.id)}))"
            )
            st.code(newest.id, language=None)

    st.subheader("The row's training")
    if detail.training is None:
        _replicate_part(detail.training_problem, "No training.")
    else:
        training = detail.training
        st.markdown(
            f"[{inert(training.id)}]({links_to.training_link(base_url, training.id)}) · status "
            f"**{inert(training.status)}** · trainer {inert(training.trainer_model)} · "
            f"created {inert(training.created_at or '?')}"
        )
        if training.error:
            st.error(f"Training error: {messages.said(training.error)}")
        st.dataframe(
            tables.mapping_frame(
                {
                    "output version": training.output_version,
                    "output weights": training.output_weights,
                    "started": training.started_at,
                    "completed": training.completed_at,
                }
            ),
            hide_index=True,
        )
        st.caption("Input")
        st.dataframe(tables.mapping_frame(redacted(training.input)), hide_index=True)
