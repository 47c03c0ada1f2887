"""One comparison as the Compare page shows it: its bottom line (one plain sentence naming
the cause, coloured by what it means), the verdict, the figures per column, the images
side by side by seed (each with its scores, its reason when it failed, a retry; the
prediction ids to copy in an expander), and the exact input of every column with what
Replicate ignores.

While the comparison runs, a fragment reads it again every ``POLL_SECONDS``: images
appear as they finish, and the whole page is drawn again when it ends. Navigation, a
reload or a closed tab lose nothing (the workers run it; the next visit reads the rows).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.compare.bottom_line import bottom_line, column_title, sides_of
from core.compare.inputs import input_diff
from core.compare.plan import REPEAT
from core.compare.scores import Tone, column_tones
from core.compare.store import ComparisonView, HistoryRow, ImageView
from core.errors import DashboardError
from core.links import prediction_link, version_link
from core.redaction import shown_value, with_urls_redacted
from core.roles import Actor
from core.text import inert
from core.versions import short_version
from dashboard import compare_ui, messages, tables
from dashboard.resources import runtime

POLL_SECONDS = 2.0
MISSING = "—"


def _number(value: Any, digits: int = 3) -> str:
    return MISSING if value is None else f"{float(value):.{digits}f}"


def stats_frame(view: ComparisonView, titles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per column (headed by ``titles`` by letter, else its saved label): faces found,
    identity (mean ± spread), change against A paired by seed, sharpness."""
    rows = []
    for column in view.columns:
        title = (titles or {}).get(str(column["letter"]), str(column["label"]))
        found = view.stats.column(column["letter"]) if view.stats is not None else None
        if found is None:
            rows.append(
                {
                    "column": title,
                    "faces": f"{MISSING} of {MISSING}",
                    "identity (lower = more like the user)": MISSING,
                    "identity vs A (paired by seed)": MISSING,
                    "face sharpness": MISSING,
                    "sharpness vs A": MISSING,
                }
            )
            continue
        rows.append(
            {
                "column": title,
                "faces": f"{found.faces} of {found.images}",
                "identity (lower = more like the user)": (
                    f"{_number(found.identity_mean)} ± {_number(found.identity_spread)}"
                    if found.identity_mean is not None
                    else MISSING
                ),
                "identity vs A (paired by seed)": _number(found.identity_vs_a),
                "face sharpness": _number(found.sharpness_mean, 1),
                "sharpness vs A": _number(found.sharpness_vs_a, 1),
            }
        )
    return pd.DataFrame(rows)


def diff_frame(columns: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every input any column sends (seed aside), differing ones first; a value sent to a
    version that does not declare it is marked."""
    inputs = [dict(column.get("input") or {}) for column in columns]
    ignored = [tuple(column.get("ignored") or ()) for column in columns]
    rows = []
    for row in input_diff(inputs, ignored):
        cells: dict[str, str] = {"input": row.name, "differs": "yes" if row.differs else ""}
        for index, column in enumerate(columns):
            value = row.values[index]
            shown = MISSING if value is None else _as_sent(shown_value(row.name, value))
            if index in row.ignored_in:
                shown += "  (ignored by Replicate)"
            cells[str(column["letter"])] = shown
        rows.append(cells)
    return pd.DataFrame(rows)


def history_frame(rows: Sequence[HistoryRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "#": row.id,
                "user": row.user_id,
                "asked by": row.requested_by,
                "when (UTC)": f"{row.requested_at:%Y-%m-%d %H:%M}",
                "status": row.status,
                "columns": row.columns,
                "seeds": row.seeds,
                "cost": f"${row.actual_usd:.3f}"
                if row.actual_usd is not None
                else f"~${row.estimate_usd:.2f}",
                "verdict": row.verdict,
            }
            for row in rows
        ]
    )


def _as_sent(value: Any) -> str:
    """A value as it goes to Replicate: text as is, anything else as JSON (URLs without
    their secrets)."""
    return with_urls_redacted(value if isinstance(value, str) else json.dumps(value))


def _cell(actor: Actor, view: ComparisonView, image: ImageView | None, label: str) -> None:
    st.caption(inert(label))
    if image is None:
        st.caption(MISSING)
        return
    if image.preview:
        st.image(image.preview, width="stretch")
    scores = image.scores or {}
    if image.status == "succeeded":
        if not scores:
            st.caption("scoring…")
        elif scores.get("face_found"):
            st.caption(
                f"face {_number(scores.get('face_score'), 2)} · identity "
                f"{_number(scores.get('identity'))} · sharp {_number(scores.get('sharpness'), 0)}"
            )
            if scores.get("identity_place"):
                st.caption(messages.said(scores["identity_place"]))
        else:
            st.caption(":red[no face found]")
    elif image.ended:
        st.error(
            f"{inert(image.status)}: "
            f"{messages.said(image.error) if image.error else 'no reason given'}",
            icon=":material/error:",
        )
        if image.can_retry and view.status != "cancelled":
            st.button(
                "Retry this image",
                key=f"retry_{image.id}_{image.attempt}",
                icon=":material/replay:",
                on_click=_retry,
                args=(actor, image.id),
            )
    else:
        st.caption(f"{inert(image.status)}…")
    if image.prediction_id:
        # The id itself is in the "Prediction ids" expander, to copy; here only the link.
        link = prediction_link(runtime().replicate_base_url, image.prediction_id)
        st.caption(
            f"[on Replicate ↗]({link})" + (f" · try {image.attempt}" if image.attempt > 1 else "")
        )


def _retry(actor: Actor, image_id: int) -> None:
    try:
        compare_ui.retry(actor, image_id)
        st.toast("Queued again: only this image runs.", icon=":material/replay:")
    except DashboardError as exc:
        st.session_state["compare_notice"] = str(exc)


def _cancel(actor: Actor, comparison_id: int) -> None:
    try:
        compare_ui.cancel(actor, comparison_id)
    except DashboardError as exc:
        st.session_state["compare_notice"] = str(exc)


def _labels(view: ComparisonView, titles: Mapping[str, str] | None) -> dict[str, str]:
    """Each letter's heading (``titles`` over the saved labels), the repeat's included."""
    labels = {str(column["letter"]): str(column["label"]) for column in view.columns}
    labels.update(titles or {})
    if view.repeat_letter:
        labels[REPEAT] = (
            f"R: {labels.get(view.repeat_letter, view.repeat_letter)} again (noise floor)"
        )
    return labels


def images_grid(
    actor: Actor, view: ComparisonView, titles: Mapping[str, str] | None = None
) -> None:
    """The images side by side by seed, each column headed by ``titles`` (by letter, else
    its saved label)."""
    letters = [str(column["letter"]) for column in view.columns]
    if view.repeat_letter:
        letters.append(REPEAT)
    labels = _labels(view, titles)
    for seed in view.seeds:
        st.markdown(f"**Seed {inert(seed)}**")
        for column, letter in zip(st.columns(len(letters)), letters, strict=True):
            with column:
                _cell(actor, view, view.image(letter, seed), labels[letter])


def prediction_frame(view: ComparisonView, titles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Each image's prediction on Replicate (and any earlier try's), to copy."""
    labels = _labels(view, titles)
    return pd.DataFrame(
        [
            {
                "seed": image.seed,
                "column": labels.get(image.letter, image.letter),
                "prediction": image.prediction_id,
                "try": image.attempt,
                "earlier tries": ", ".join(image.earlier_predictions),
            }
            for image in view.images
            if image.prediction_id or image.earlier_predictions
        ]
    )


def bottom_line_titles(
    view: ComparisonView, roles: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Show the comparison's bottom line (one plain sentence, coloured by what it means:
    worse red, better green, no difference neutral) and return each column's title by
    letter, its version named as staff name versions (``roles`` call the columns by their
    part, as the gate's current and new)."""
    email, versions, datasets = compare_ui.names_for(view.user_id, _model_of(view))
    sides = sides_of(view.columns, versions, roles=roles, datasets=datasets)
    titles = {
        side.letter: column_title(column, side, (roles or {}).get(side.letter))
        for column, side in zip(view.columns, sides, strict=True)
    }
    found = bottom_line(sides, view.stats, email or "this user")
    if found is not None:
        show = {Tone.WORSE: st.error, Tone.BETTER: st.success}.get(found.tone, st.info)
        show(f"**{messages.said(found.sentence)}**", icon=":material/campaign:")
    return titles


def _model_of(view: ComparisonView) -> str | None:
    return next((str(c["model_id"]) for c in view.columns if c.get("model_id")), None)


def _header(view: ComparisonView) -> dict[str, str]:
    """The comparison's heading, its bottom line, and its figures of cost; each column's
    title by letter."""
    st.subheader(f"Comparison #{view.id}")
    email = compare_ui.names_for(view.user_id, _model_of(view))[0]
    person = (
        f"[{inert(email)}]({tables.user_link(view.user_id)}) ({inert(view.user_id)})"
        if email
        else f"[{inert(view.user_id)}]({tables.user_link(view.user_id)})"
    )
    st.markdown(
        f"User {person} · asked by "
        f"{inert(view.requested_by)} at {view.requested_at:%Y-%m-%d %H:%M} UTC · "
        f"{'preset ' + inert(view.preset) if view.preset else 'free text'}"
    )
    titles = bottom_line_titles(view)
    st.caption(f"Prompt: {messages.said(view.prompt)}")
    status, images, estimate, actual = st.columns(4)
    status.metric("status", inert(view.status))
    images.metric("images", f"{view.done} of {len(view.images)} ended")
    estimate.metric("estimated", f"${view.estimate_usd:.2f}")
    actual.metric(
        "actual",
        MISSING if view.actual_usd is None else f"${view.actual_usd:.3f}",
        help="Replicate's metrics.predict_time of every image times the price per second",
    )
    return titles


def _signature(view: ComparisonView) -> tuple[object, ...]:
    """What, once changed, is worth drawing the page again for."""
    return (
        view.status,
        tuple((image.id, image.status, image.scores is not None) for image in view.images),
    )


def show(actor: Actor, comparison_id: int) -> None:
    """The comparison; while it runs, a fragment watches it and draws the page again when
    an image ends or is scored (images are drawn only then, not on every poll)."""
    try:
        view = compare_ui.comparison(comparison_id)
    except DashboardError as exc:
        messages.error(exc)
        return
    notice = st.session_state.pop("compare_notice", None)
    if notice:
        messages.error(notice)
    titles = _header(view)
    if view.is_active:
        seen = _signature(view)

        @st.fragment(run_every=POLL_SECONDS)
        def watch() -> None:
            current = compare_ui.comparison(comparison_id, previews=False)
            if _signature(current) != seen:
                st.rerun(scope="app")
            st.progress(
                current.done / max(1, len(current.images)),
                text=f"{current.done} of {len(current.images)} images ended; the workers "
                "run it, so leaving this page does not stop it.",
            )

        watch()
        st.button(
            "Cancel comparison",
            key=f"cancel_{view.id}",
            icon=":material/cancel:",
            on_click=_cancel,
            args=(actor, view.id),
        )
    # Each line coloured by what it means: its column worse than A (or a version without a
    # face) red, better green, no difference neutral.
    show = {Tone.WORSE: messages.error, Tone.BETTER: messages.success}
    for line, tone in zip(view.verdict, column_tones(view.stats, len(view.verdict)), strict=True):
        show.get(tone, messages.info)(line, icon=":material/fact_check:")
    if view.stats:
        st.dataframe(stats_frame(view, titles), hide_index=True)
        st.caption(
            f"Noise floor {_number(view.stats.noise_floor)}: the largest change the "
            "repeat of column A shows (never below 0.030). Identity is the distance of the "
            "image's face to the medoid of the user's own training photos."
        )
    if view.reference:
        reference = view.reference
        st.caption(
            f"Likeness measured against {inert(reference.get('faces', 0))} faces in the user's "
            f"{inert(reference.get('photos', 0))} training photos."
            + (f" {messages.said(reference['problem'])}" if reference.get("problem") else "")
        )
    images_grid(actor, view, titles)
    predictions = prediction_frame(view, titles)
    if not predictions.empty:
        with st.expander("Prediction ids", icon=":material/tag:"):
            st.dataframe(predictions, hide_index=True)
    with st.expander("What each column sends", icon=":material/difference:"):
        st.dataframe(diff_frame(view.columns), hide_index=True, height="content")
        for column in view.columns:
            if column.get("note"):
                st.caption(f"{inert(column['letter'])}: {messages.said(column['note'])}")
            if column.get("model_id"):
                link = version_link(
                    runtime().replicate_base_url, str(column["model_id"]), str(column["version_id"])
                )
                st.caption(
                    f"{inert(column['letter'])}: "
                    f"[{inert(short_version(str(column['version_id'])))}]({link}) "
                    f"of {inert(column['model_id'])}"
                )
