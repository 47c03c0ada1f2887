"""``core.text.inert``: a string from data, as Markdown that shows exactly its characters.

What Streamlit's Markdown does with the result was checked in chromium (links, images,
HTML, directives, icons, math and autolinks stay text); these tests pin the rules that
make it so, on plain values.
"""

from __future__ import annotations

import re
import string

import pytest

from core.text import ELLIPSIS, MESSAGE, REPLACEMENT, SHORT, WORD_JOINER, cut, inert

# What a reader sees: each escape undone, the invisible joiners gone.
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def _shown(markdown: str) -> str:
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")


def _unescaped(markdown: str) -> str:
    """The characters Markdown would read as syntax: those not escaped."""
    return _ESCAPED.sub("", markdown)


@pytest.mark.parametrize(
    "hostile",
    [
        "[x](https://evil.example)",
        "![x](https://evil.example/i.png)",
        '<a href="https://evil.example">a</a>',
        "<img src=x onerror=alert(1)>",
        "x` [Session expired - sign in again](https://evil.example/login) `.jpg",
        ":red[x] :blue-background[y] :red-badge[z]",
        ":material/warning: :smile:",
        "$x^2$ and $$y$$",
        "**bold** _it_ ~~strike~~",
        "# heading",
        "- item",
        "1. item",
        "> quote",
        "| a | b |",
        "&lt;b&gt; &amp;",
        "\\[x\\](y) back\\slash\\",
        "[^1] <https://evil.example> [ref][r]",
        "{: .x} ^sup^ =",
    ],
)
def test_every_markdown_character_is_escaped_and_the_text_reads_the_same(hostile: str) -> None:
    shown = inert(hostile)
    assert not set(_unescaped(shown)) & set(string.punctuation), shown
    assert _shown(shown) == hostile


def test_plain_words_are_left_alone() -> None:
    assert inert("Stored version abc123 of user 42") == "Stored version abc123 of user 42"
    assert inert("Grüße 你好 ≠ — …") == "Grüße 你好 ≠ — …"


@pytest.mark.parametrize(
    ("hostile", "joined"),
    [
        # GFM finds these in text, after the escapes are undone
        ("see https://evil.example/x", "https:⁠//evil.example/x"),
        ("HTTP://EVIL.EXAMPLE", "HTTP:⁠//EVIL.EXAMPLE"),
        ("www.evil.example", "www⁠.evil.example"),
        ("WWW.evil.example", "WWW⁠.evil.example"),
        ("mail a@evil.example", "a@⁠evil.example"),
        # Streamlit's own text plugins: pictures and icons, arrows and dashes
        (":streamlit:", ":⁠streamlit:"),
        (":material_home:", ":⁠material_home:"),
        (":smile:", ":⁠smile:"),
        ("a -> b", "-⁠>"),
        ("a <-> b", "<⁠->"),
        ("a -- b", "-⁠-"),
        ("a >= b", ">⁠="),
    ],
)
def test_what_markdown_finds_in_plain_text_is_broken_by_a_word_joiner(
    hostile: str, joined: str
) -> None:
    assert joined.replace("⁠", WORD_JOINER) in _ESCAPED.sub(r"\1", inert(hostile))
    assert _shown(inert(hostile)) == hostile


def test_arrows_inside_words_stay_as_they_are() -> None:
    assert WORD_JOINER not in inert("x->y a--b")


def test_control_characters_are_dropped_and_line_breaks_become_spaces() -> None:
    assert inert("nul\x00here\x1b[31m\x7f\x85") == "nulhere\\[31m "
    assert inert("line1\n\n    code\r\n---\tend") == "line1      code  \\-\\-\\- end"
    assert "\n" not in inert("a\u2028b\u2029c\x0bd\x0ce")


@pytest.mark.parametrize(
    "control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069", "\u200e"]
)
def test_bidi_controls_show_as_a_replacement_character(control: str) -> None:
    assert inert(f"{control}gpj.exe") == f"{REPLACEMENT}gpj\\.exe"


def test_long_values_are_cut_with_an_ellipsis() -> None:
    long_id = "9" * 3000
    shown = inert(long_id)
    assert len(shown) == SHORT and shown.endswith(ELLIPSIS)
    assert inert(long_id, limit=None) == long_id
    assert inert("x" * SHORT) == "x" * SHORT
    # cut first, escape after: an escape is never split in two
    assert inert("[" * 400).endswith("\\[" + ELLIPSIS)
    assert cut("abcdef", 4) == "abc" + ELLIPSIS


def test_an_id_inside_a_long_message_is_cut_and_the_words_around_it_kept() -> None:
    message = f"No user with id '{'9' * 3000}'. Search the Users page."
    shown = inert(message, limit=MESSAGE)
    assert shown.startswith("No user with id \\'" + "9" * (SHORT - 2) + ELLIPSIS + " ")
    assert shown.endswith("Search the Users page\\.")
    assert inert(message, limit=None) == inert(message, limit=None)  # never cut: whole
    assert "9" * 3000 in inert(message, limit=None)


def test_anything_is_shown_as_its_text() -> None:
    assert inert(42) == "42"
    assert inert(None) == "None"
    assert inert(ValueError("bad [x](y)")) == "bad \\[x\\]\\(y\\)"
