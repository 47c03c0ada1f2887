"""The User page's pictures: each training's photos (thumbnails from its ZIP, failing ones
marked with the reason; read by a worker the first time) and the user's recent generations
(shown when their URL still answers), both in one grid: ``PER_ROW`` fixed columns of
same-size square thumbnails (``core.imaging.measure.thumbnail``), so rows line up."""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from core.compare.photos import TrainingPhoto, photos_of, queue_reads
from core.drift.facts import TrainingRecord
from core.errors import DashboardError
from core.generations import Generation, recent_generations
from core.imaging.decode import ZipPhoto, decode_photo
from core.imaging.measure import thumbnail
from core.ledger.datasets import input_images_url
from core.links import training_link
from core.text import inert
from dashboard.resources import read_only, runtime, writing

PER_ROW = 6
# A generated image is read whole to make its thumbnail; the app's outputs are a few MB.
GENERATION_MAX_BYTES = 20 * 1024 * 1024
THUMBNAIL_READ_SIDE = 512  # enough for a 256 px square, and a JPEG decodes at 1/4 scale


@st.cache_data(ttl=300, max_entries=256, show_spinner=False)
def _generation_thumbnail(url: str) -> bytes | None:
    """The square thumbnail of a stored output, or None when its URL no longer answers
    (Replicate deletes outputs an hour after they end; the app's blob store may have
    dropped some) or holds no picture. Read through the gateway, under its download
    policy, since the URL comes from the app's database."""
    try:
        data = runtime().gateway.download(url, max_bytes=GENERATION_MAX_BYTES)
    except DashboardError:
        return None
    photo = decode_photo(
        "generation", io.BytesIO(data), byte_size=len(data), long_side=THUMBNAIL_READ_SIDE
    )
    return thumbnail(photo.image) if isinstance(photo, ZipPhoto) else None


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
        _grid([(photo.thumbnail or b"", _caption(photo)) for photo in shown])
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
        thumbnails = list(pool.map(_generation_thumbnail, [item.url for item in recent]))
    alive = [
        (picture, inert(item.caption()))
        for item, picture in zip(recent, thumbnails, strict=True)
        if picture is not None
    ]
    gone = len(recent) - len(alive)
    if gone:
        st.caption(f"{gone} of the {len(recent)} newest images no longer answer (deleted).")
    _grid(alive)


def _grid(pictures: Sequence[tuple[bytes, str]]) -> None:
    """Square thumbnails ``PER_ROW`` to a row, every row the same columns (a short last
    row keeps them), each with its caption (Markdown) under it."""
    for start in range(0, len(pictures), PER_ROW):
        columns = st.columns(PER_ROW, gap="small", vertical_alignment="top")
        for column, (picture, caption) in zip(
            columns, pictures[start : start + PER_ROW], strict=False
        ):
            column.image(picture, caption=caption, width="stretch")
