"""A comparison's bottom line: one plain sentence naming the cause the columns differ by
(trigger word, version, inputs), coloured by what it means; values built in memory."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from core.compare.bottom_line import Dataset, bottom_line, column_title, sides_of, trigger_sent
from core.compare.scores import ColumnStats, ComparisonStats, Tone
from core.gateway.values import ModelVersion

pytestmark = pytest.mark.timeout(30)
FLOOR = 0.03
YEAR = 2026
V1, V2, V3, V4 = ("1" * 64, "2" * 64, "3" * 64, "4" * 64)
# The model's versions, newest first as Replicate lists them.
VERSIONS = [
    ModelVersion(V4, datetime(YEAR, 10, 20, tzinfo=UTC)),
    ModelVersion(V3, datetime(YEAR, 10, 12, tzinfo=UTC)),
    ModelVersion(V2, datetime(YEAR, 10, 7, tzinfo=UTC)),
    ModelVersion(V1, datetime(YEAR, 10, 3, tzinfo=UTC)),
]
APP_INPUT = {"guidance_scale": 3.5, "num_inference_steps": 28, "hf_lora": "https://x/w.tar"}
SITE_INPUT = {"guidance_scale": 3.0, "num_inference_steps": 50, "output_format": "webp"}


def column(
    letter: str,
    name: str,
    version_id: str,
    *,
    style: str = "app",
    trained: str | None = "zoe1",
    sent: str | None = "zoe1",
    extra: Mapping[str, Any] | None = None,
    ignored: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A column as ``ops.comparisons.columns`` keeps it."""
    if style == "site":
        given = {**SITE_INPUT, "prompt": f"{sent}, a headshot"}
    else:
        given = {**APP_INPUT, "prompt": f"{sent}, Mixed woman, a headshot"}
    return {
        "letter": letter,
        "name": name,
        "label": f"{letter}: {name}",
        "version_id": version_id,
        "style": style,
        "trigger_word": trained,
        "trigger_sent": sent,
        "input": {**given, **(extra or {})},
        "ignored": list(ignored),
    }


def stats(*changes: float | None, faces: tuple[int, ...] | None = None) -> ComparisonStats:
    """Column A, then one column per change against A (paired by seed)."""
    counts = faces or (4,) * (len(changes) + 1)
    columns = [
        ColumnStats(
            letter="ABCD"[index],
            images=4,
            faces=count,
            identity_mean=0.4 if count else None,
            identity_spread=0.01 if count else None,
            sharpness_mean=120.0,
            identity_vs_a=None if index == 0 or not count else changes[index - 1],
            sharpness_vs_a=None,
        )
        for index, count in enumerate(counts)
    ]
    return ComparisonStats(FLOOR, tuple(columns))


def line(columns: list[dict[str, Any]], figures: ComparisonStats, **options: Any) -> Any:
    sides = sides_of(
        columns,
        VERSIONS,
        this_year=YEAR,
        roles=options.pop("roles", None),
        datasets=options.pop("datasets", None),
    )
    found = bottom_line(sides, figures, options.pop("person", "zoe@example.com"))
    assert found is not None
    return found


def test_the_trigger_word_the_model_never_learned_is_named_with_the_sites() -> None:
    columns = [
        column("A", "stored", V4, sent="user_38172604", trained="user38172604"),
        column("B", "latest", V4, sent="user_38172604", trained="user38172604"),
        column("C", "site", V4, style="site", sent="user38172604", trained="user38172604"),
    ]
    found = line(columns, stats(None, None, faces=(0, 0, 4)))
    assert found.tone is Tone.WORSE
    assert found.sentence.startswith(
        "The app's images lose the face because the app sends the trigger word "
        "“user_38172604”, which this model never learned; Replicate's site sends "
        "“user38172604”"
    ), found.sentence
    # The rest of what the site does differently is named after it.
    assert "they also differ in guidance_scale, hf_lora, num_inference_steps" in found.sentence


def test_a_word_only_one_of_two_versions_learned_is_named_with_the_one_it_learned() -> None:
    columns = [
        column("A", V2[:12], V2, sent="zoe1", trained="zoe1"),
        column("B", V3[:12], V3, sent="zoe1", trained="zoe2"),
    ]
    found = line(columns, stats(None, faces=(4, 0)), roles={"A": "current", "B": "new"})
    assert found.tone is Tone.WORSE
    assert found.sentence == (
        "The images from the new version (v3 · trained 12 Oct) lose the face because both "
        "send the trigger word “zoe1”, which the new version (v3 · trained 12 Oct) never "
        "learned (it learned “zoe2”)."
    )


def test_a_stale_version_is_named_with_how_far_behind_the_latest_it_is() -> None:
    columns = [column("A", "stored", V1), column("B", "latest", V4)]
    worse = line(columns, stats(0.05))
    assert worse.tone is Tone.WORSE
    assert worse.sentence == (
        "The latest version makes images less like zoe@example.com than the app, beyond "
        "noise, because the app uses v1 · trained 3 Oct, three versions behind the latest "
        "v4 · trained 20 Oct."
    )
    better = line(columns, stats(-0.05))
    assert better.tone is Tone.BETTER
    assert better.sentence.startswith(
        "The latest version makes images more like zoe@example.com than the app, beyond noise"
    )
    assert "three versions behind the latest v4 · trained 20 Oct" in better.sentence


def test_no_difference_beyond_noise_is_said_plainly_and_still_names_the_cause() -> None:
    columns = [column("A", "stored", V1), column("B", "latest", V4)]
    found = line(columns, stats(0.03), person="this user")  # exactly the floor: noise
    assert found.tone is Tone.NO_DIFFERENCE
    assert found.sentence == (
        "No difference beyond noise between the app and the latest version, though the app "
        "uses v1 · trained 3 Oct, three versions behind the latest v4 · trained 20 Oct; more "
        "seeds would tell."
    )


def test_inputs_that_differ_and_inputs_the_version_ignores_are_named() -> None:
    columns = [
        column("A", "v2", V2, ignored=("hf_lora",)),
        column("B", "v3", V3, extra={"lora_scale": 0.8}),
    ]
    found = line(columns, stats(0.06), person="this user")
    assert found.tone is Tone.WORSE
    assert found.sentence == (
        "v3 · trained 12 Oct makes images less like this user than v2 · trained 7 Oct, "
        "beyond noise, because they differ in lora_scale; v2 · trained 7 Oct ignores hf_lora."
    )


def test_the_gates_columns_are_the_current_and_the_new_version_by_name() -> None:
    columns = [column("A", V2[:12], V2), column("B", V3[:12], V3)]
    roles = {"A": "current", "B": "new"}
    found = line(columns, stats(0.05), roles=roles, person="zoe@example.com")
    assert found.tone is Tone.WORSE
    assert found.sentence == (
        "The new version (v3 · trained 12 Oct) makes images less like zoe@example.com than "
        "the current version (v2 · trained 7 Oct), beyond noise."
    )
    sides = sides_of(columns, VERSIONS, roles=roles, this_year=YEAR)
    assert [column_title(c, s, roles[s.letter]) for c, s in zip(columns, sides, strict=True)] == [
        "current (v2 · trained 7 Oct)",
        "new (v3 · trained 12 Oct)",
    ]
    # On Compare a hash column is titled by its version's name, the hash beside it.
    plain = sides_of(columns, VERSIONS, this_year=YEAR)
    assert column_title(columns[0], plain[0]) == f"A: {V2[:12]} (v2 · trained 7 Oct, app's input)"


def test_the_worst_news_is_the_one_spoken_of_and_nothing_without_figures() -> None:
    columns = [
        column("A", "stored", V4, sent="old", trained="new"),
        column("B", "latest", V4, sent="old", trained="new"),
        column("C", "site", V4, style="site", sent="new", trained="new"),
    ]
    # B within noise, C loses the face: C is spoken of.
    found = line(columns, stats(0.01, None, faces=(4, 4, 0)))
    assert found.tone is Tone.WORSE
    assert found.sentence.startswith("The site's images lose the face because")
    sides = sides_of(columns, VERSIONS, this_year=YEAR)
    assert bottom_line(sides, None, "this user") is None  # still running: no figures yet
    assert bottom_line(sides[:1], stats(), "this user") is None  # one column: nothing to say


def test_an_older_comparison_tells_its_trigger_word_from_the_prompt() -> None:
    app = column("A", "stored", V1, sent="user_9")
    site = column("B", "site", V1, style="site", sent="user9", trained="user9")
    for saved in (app, site):
        del saved["trigger_sent"]  # recorded before the word was kept with the column
    assert trigger_sent(app) == "user_9" and trigger_sent(site) == "user9"


def test_a_version_trained_on_fewer_or_squeezed_photos_is_named_for_it() -> None:
    columns = [
        column("A", "v1", V1, extra={"hf_lora": "https://x/1.tar"}),
        column("B", "v2", V2, extra={"hf_lora": "https://x/2.tar"}),
    ]
    found = line(
        columns,
        stats(0.3),
        datasets={V1: Dataset(21, 1024), V2: Dataset(12, 512)},
    )
    assert found.tone is Tone.WORSE
    assert found.sentence == (
        "v2 · trained 7 Oct makes images less like zoe@example.com than v1 · trained 3 Oct, "
        "beyond noise, because v2 · trained 7 Oct was trained on 12 photos, v1 · trained "
        "3 Oct on 21; v2 · trained 7 Oct's photos were squeezed to 512 px (v1 · trained "
        "3 Oct's: 1024 px)."
    )
    # Each version's own weights differ by nature: not named as a cause between versions.
    unmeasured = line(columns, stats(0.3))
    assert "hf_lora" not in unmeasured.sentence
    same_version = line(
        [
            column("A", "stored", V1, extra={"hf_lora": "https://x/1.tar"}),
            column("B", "site", V1, style="site", extra={"hf_lora": "https://x/other.tar"}),
        ],
        stats(0.3),
    )
    assert "hf_lora" in same_version.sentence  # one version, other weights: a cause


def test_faces_far_less_sharp_are_named_even_when_the_likeness_is_the_same() -> None:
    from dataclasses import replace

    columns = [column("A", "v1", V1), column("B", "v2", V2)]
    same = stats(0.004)
    blurred = ComparisonStats(
        FLOOR, (same.columns[0], replace(same.columns[1], sharpness_mean=40.0))
    )
    found = line(columns, blurred, datasets={V1: Dataset(16, 1024), V2: Dataset(16, 480)})
    assert found.tone is Tone.WORSE
    assert found.sentence == (
        "No difference in likeness beyond noise between v1 · trained 3 Oct and v2 · trained "
        "7 Oct, but v2 · trained 7 Oct's faces are far less sharp than v1 · trained 3 Oct's "
        "(40 against 120), because v2 · trained 7 Oct's photos were squeezed to 480 px "
        "(v1 · trained 3 Oct's: 1024 px)."
    )
    assert line(columns, same).tone is Tone.NO_DIFFERENCE  # as sharp: nothing to name
    sharper = ComparisonStats(
        FLOOR, (replace(same.columns[0], sharpness_mean=40.0), same.columns[1])
    )
    assert line(columns, sharper).tone is Tone.BETTER  # B is the sharp one
