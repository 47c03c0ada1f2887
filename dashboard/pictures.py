"""The User page's pictures: each training's photos (thumbnails from its ZIP, failing ones
marked with the reason; read by a worker the first time) and the user's recent generations
(shown when their URL still answers)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from core.compare.photos import TrainingPhoto, photos_of, queue_reads
from core.drift.facts import TrainingRecord
from core.generations import Generation, recent_generations
from core.ledger.datasets import input_images_url
from core.links import training_link
from core.text import inert
from dashboard.resources import read_only, runtime, writing

PER_ROW = 6


@st.cache_data(ttl=300, max_entries=256, show_spinner=False)
def _answers(url: str) -> bool:
    """Whether a stored output URL still answers (Replicate deletes outputs an hour after
    they end; the app's blob store may have dropped some): one HEAD through the gateway,
    under its download policy, since the URL comes from the app's database."""
    return runtime().gateway.answers(url)


def _photos(urls: Sequence[str]) -> tuple[dict[str, list[TrainingPhoto]], list[str]]:
    live = runtime()
    with writing(live.ops_engine) as conn, conn.begin():
        queued = queue_reads(conn, urls)
    with read_only(live.ops_engine) as conn:
        return {url: photos_of(conn, url) for url in urls}, queued


def _caption(photo: TrainingPhoto) -> str:
    """The photo's name (from its ZIP) and what fails, as Markdown (an image's caption is)."""
    if photo.skipped:
        return f"{inert(photo.member)}: skipped ({inert(photo.skipped)})"
    if photo.failing:
        return f"{inert(photo.member)}: {inert(', '.join(photo.failing))}"
    return inert(photo.member)


def training_photos(trainings: Sequence[TrainingRecord]) -> None:
    """Each training's photos, newest training first."""
    with_zip = [
        (training, url)
        for training in reversed(trainings)
        if (url := input_images_url(training)) is not None
    ]
    if not with_zip:
        st.info("No training of this user has a photo ZIP in the training history.")
        return
    found, queued = _photos([url for _, url in with_zip])
    if queued:
        st.info(
            f"A worker is reading {len(queued)} training ZIP(s) for thumbnails (seconds); "
            "reload the page to see them."
        )
    base = runtime().replicate_base_url
    for training, url in with_zip:
        photos = found.get(url, [])
        failing = sum(1 for photo in photos if photo.failing or photo.skipped)
        when = f"{training.created_at:%Y-%m-%d}" if training.created_at else "—"
        st.markdown(
            f"**[{inert(training.id)}]({training_link(base, training.id)})** · {when} · "
            f"{inert(training.status)} · {len(photos)} photos"
            + (f" · :red[{failing} failing a check]" if failing else "")
        )
        shown = [photo for photo in photos if photo.thumbnail]
        for start in range(0, len(shown), PER_ROW):
            for column, photo in zip(
                st.columns(PER_ROW), shown[start : start + PER_ROW], strict=False
            ):
                column.image(photo.thumbnail or b"", caption=_caption(photo), width="stretch")
        for photo in photos:
            if photo.skipped:
                st.caption(f":red[{_caption(photo)}]")


def generations(user_id: str) -> None:
    """The user's recent generations whose URL still answers."""
    with read_only(runtime().engine) as conn:
        recent: list[Generation] = recent_generations(conn, user_id)
    if not recent:
        st.info("No generations of this user are stored in the app's tables.")
        return
    with ThreadPoolExecutor(max_workers=8) as pool:
        answering = list(pool.map(_answers, [item.url for item in recent]))
    alive = [item for item, ok in zip(recent, answering, strict=True) if ok]
    gone = len(recent) - len(alive)
    if gone:
        st.caption(f"{gone} of the {len(recent)} newest images no longer answer (deleted).")
    for start in range(0, len(alive), PER_ROW):
        for column, item in zip(st.columns(PER_ROW), alive[start : start + PER_ROW], strict=False):
            when = f"{item.created_at:%Y-%m-%d}" if item.created_at else ""
            column.image(item.url, caption=f"{when} · {inert(item.source)}", width="stretch")
