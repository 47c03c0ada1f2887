"""The compare core's pure parts: columns, inputs, ignored inputs, the diff, scores and
the verdict, on plain values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.app.calls import REALISM_LORA_URL
from core.compare.columns import (
    DEFAULT_COLUMNS,
    Style,
    UserVersion,
    VersionFacts,
    parse_columns,
    resolve_columns,
)
from core.compare.inputs import (
    PRESETS,
    AppProfile,
    app_input,
    ignored_inputs,
    input_diff,
    site_input,
)
from core.compare.run import short_label, summarise
from core.compare.scores import (
    MIN_NOISE_FLOOR,
    ImageScore,
    Reference,
    column_stats,
    noise_floor,
    verdict,
)
from core.errors import DataRejected
from core.sandbox.catalog import lora_version_schema

pytestmark = pytest.mark.timeout(30)

V1, V2, V3 = "a" * 64, "b" * 64, "c" * 64
SCHEMA = lora_version_schema()["components"]["schemas"]["Input"]


def _versions() -> tuple[UserVersion, ...]:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        UserVersion(1, V1, "sandrasocial/user-1", "user1", "https://w/1.tar", "t1", when),
        UserVersion(2, V2, "sandrasocial/user-1", "user1", "https://w/2.tar", "t2", when),
    )


def _facts(stored: str | None = V1, latest: str | None = V2) -> VersionFacts:
    return VersionFacts(stored, latest, "sandrasocial/user-1", _versions())


# -- columns -----------------------------------------------------------------------------


def test_default_columns_are_stored_latest_and_the_sites_way() -> None:
    columns = resolve_columns(parse_columns(None), _facts())
    assert parse_columns(None) == DEFAULT_COLUMNS
    assert [(c.letter, c.name, c.version_id, c.style) for c in columns] == [
        ("A", "stored", V1, Style.APP),
        ("B", "latest", V2, Style.APP),
        ("C", "site", V2, Style.SITE),
    ]
    assert columns[2].trigger_word == "user1" and columns[1].weights_url == "https://w/2.tar"


def test_numbered_and_hash_columns() -> None:
    columns = resolve_columns(parse_columns(" V2, v1 ," + V3), _facts())
    assert [(c.name, c.version_id) for c in columns] == [("v2", V2), ("v1", V1), (V3[:12], V3)]
    assert columns[2].trigger_word is None  # not one of the user's trainings


@pytest.mark.parametrize(
    ("stored", "note"),
    [
        (f"sandrasocial/user-1:{V1}", "The row stores"),
        (f" {V1.upper()}\n", "The row stores"),
        (V1, None),
    ],
)
def test_a_malformed_stored_version_is_normalised_and_says_so(
    stored: str, note: str | None
) -> None:
    (column,) = resolve_columns(["stored"], _facts(stored=stored))
    assert column.version_id == V1
    assert (column.note is None) if note is None else (note in (column.note or ""))


@pytest.mark.parametrize(
    ("names", "facts", "message"),
    [
        (["stored"], _facts(stored=None), "no usable version"),
        (["stored"], _facts(stored="f463fbfc"), "no usable version"),
        (["latest"], _facts(latest=None), "no latest version"),
        (["v3"], _facts(), "there is no v3"),
        (["newest"], _facts(), "Unknown column 'newest'"),
        (["v1", "v2", "stored", "latest", "site"], _facts(), "At most 4 columns"),
    ],
)
def test_what_cannot_be_compared_is_said_plainly(
    names: list[str], facts: VersionFacts, message: str
) -> None:
    with pytest.raises(DataRejected, match=message):
        resolve_columns(names, facts)


# -- inputs ------------------------------------------------------------------------------


PROFILE = AppProfile(
    trigger_word="userabc",
    ethnicity="Other",
    gender="female",
    lora_weights_url="https://w/1.tar",
    lora_scale=None,
)


def test_the_apps_input_is_rebuilt_as_the_app_builds_it() -> None:
    preset = PRESETS["editorial"]
    given = app_input(PROFILE, prompt=preset.prompt, category=preset.category, seed=7)
    assert given["prompt"] == f"userabc, woman, {preset.prompt}"  # "Other" is left out
    assert given["aspect_ratio"] == "3:4" == preset.aspect_ratio
    assert (given["guidance_scale"], given["num_inference_steps"]) == (3.5, 50)
    assert (given["hf_lora"], given["lora_scale"], given["seed"]) == ("https://w/1.tar", 1.0, 7)
    assert (given["extra_lora"], given["extra_lora_scale"]) == (REALISM_LORA_URL, 0.2)
    assert given["go_fast"] is False and given["output_format"] == "png"


def test_the_sites_way_is_the_schemas_defaults_and_the_trained_trigger() -> None:
    given = site_input(SCHEMA, trigger_word="userabc", prompt="a headshot", seed=3)
    assert given["prompt"] == "userabc, a headshot" and given["seed"] == 3
    assert (given["guidance_scale"], given["num_inference_steps"]) == (3, 28)
    assert given["output_format"] == "webp" and "hf_lora" not in given
    assert site_input(None, trigger_word=None, prompt="x", seed=1) == {"prompt": "x", "seed": 1}


def test_undeclared_inputs_are_named_and_an_unknown_schema_says_nothing() -> None:
    given = {"prompt": "x", "negative_prompt": "blurry", "hf_token": "secret", "seed": 1}
    assert ignored_inputs(SCHEMA, given) == ("hf_token", "negative_prompt")
    assert ignored_inputs(None, given) == ()
    assert ignored_inputs({"properties": None}, given) == ()


def test_the_input_diff_puts_differences_first_and_marks_ignored_values() -> None:
    a = {"prompt": "p", "seed": 1, "guidance_scale": 3.5, "negative_prompt": "n"}
    b = {"prompt": "p", "seed": 1, "guidance_scale": 3}
    rows = input_diff([a, b], [("negative_prompt",), ()])
    assert [row.name for row in rows] == ["guidance_scale", "negative_prompt", "prompt", "seed"]
    assert [row.differs for row in rows] == [True, True, False, False]
    assert rows[1].values == ("n", None) and rows[1].ignored_in == (0,)


# -- scores and verdict ------------------------------------------------------------------


def _reference() -> Reference:
    # Four photos on a line: medoid at 0.1; the others 0.1, 0.2 and 0.3 from it.
    faces = {f"p{i}": [0.1 * i] + [0.0] * 127 for i in range(4)}
    reference = Reference.from_faces(faces)
    assert reference is not None
    return reference


def test_identity_is_placed_within_the_users_own_spread() -> None:
    reference = _reference()
    assert reference.medoid[0] == pytest.approx(0.1)
    assert reference.spread == pytest.approx((0.1, 0.1, 0.2))
    assert reference.place(0.05) == "closer than any of the user's own photos"
    assert reference.place(0.15) == "within the user's own photos (closer than 33% of them)"
    assert reference.place(0.5) == "further than any of the user's own photos"
    assert Reference.from_faces({}) is None


def _score(identity: float | None, sharpness: float = 50.0) -> ImageScore:
    found = identity is not None
    return ImageScore(found, 1.0 if found else None, identity, None, None, None, sharpness)


def test_columns_are_paired_with_a_by_seed() -> None:
    a = {1: _score(0.20), 2: _score(0.30), 3: _score(None)}
    b = {1: _score(0.40, 10.0), 2: _score(0.50, 20.0), 4: _score(0.1)}
    stats = column_stats("B", b, a)
    assert stats.identity_vs_a == pytest.approx(0.20)  # seeds 1 and 2 only
    assert stats.sharpness_vs_a == pytest.approx(-35.0)
    assert (stats.images, stats.faces) == (3, 3)
    assert column_stats("A", a, None).identity_vs_a is None


def test_the_noise_floor_is_the_repeats_largest_change_never_below_the_minimum() -> None:
    a = {1: _score(0.20), 2: _score(0.30)}
    assert noise_floor(a, {1: _score(0.20), 2: _score(0.30)}) == MIN_NOISE_FLOOR
    assert noise_floor(a, {1: _score(0.25), 2: _score(0.22)}) == pytest.approx(0.08)
    assert noise_floor(a, {}) == MIN_NOISE_FLOOR


def test_the_verdict_says_closer_beyond_noise_or_no_difference() -> None:
    a = column_stats("A", {1: _score(0.2), 2: _score(0.2)}, None)
    baseline = {1: _score(0.2), 2: _score(0.2)}
    worse = column_stats("B", {1: _score(0.5), 2: _score(0.45)}, baseline)
    same = column_stats("C", {1: _score(0.21), 2: _score(0.2)}, baseline)
    names = {"A": "A (v1)", "B": "B (v2)", "C": "C (site)"}
    lines = verdict(names, [a, worse, same], 0.03)
    assert lines[0].startswith("A (v1) is closer to the user's photos than B (v2) by 0.275")
    assert "beyond noise" in lines[0]
    assert lines[1].startswith("C (site) and A (v1): no difference in likeness beyond noise")


def test_the_verdict_says_which_input_loses_the_likeness() -> None:
    no_face = column_stats("A", {1: _score(None), 2: _score(None)}, None)
    faces = column_stats("C", {1: _score(0.2), 2: _score(0.3)}, {1: _score(None)})
    also_none = column_stats("B", {1: _score(None)}, {1: _score(None)})
    lines = verdict(
        {"A": "A (stored)", "B": "B (latest)", "C": "C (site)"}, [no_face, also_none, faces], 0.03
    )
    assert lines[0] == "B (latest), like A (stored), finds no face in any image."
    assert "A (stored) loses the likeness" in lines[1]


def test_summarise_reads_stored_scores_and_labels_columns() -> None:
    class Row:
        def __init__(self, letter: str, seed: int, identity: float | None) -> None:
            self.letter, self.seed, self.status = letter, seed, "succeeded"
            self.scores = _score(identity).to_dict()

    columns = [
        {"letter": "A", "name": "v1", "style": "app"},
        {"letter": "B", "name": "latest", "style": "site"},
    ]
    stats, lines = summarise(columns, [Row("A", 1, 0.2), Row("B", 1, 0.6), Row("R", 1, 0.25)])
    assert stats["noise_floor"] == pytest.approx(0.05)
    assert lines == (
        "A (v1) is closer to the user's photos than B (latest, the site's way) by 0.400, "
        "beyond noise (floor 0.050).",
    )
    assert short_label(columns[0]) == "A (v1)"
