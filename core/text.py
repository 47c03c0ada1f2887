"""Text from data, made inert for Streamlit's Markdown.

Nearly everything Streamlit draws is Markdown: ``st.markdown``, ``st.caption``, the alerts
(``st.error`` …), ``st.write`` of a string, titles and headers, the labels of buttons,
expanders and tabs, ``help=`` tooltips, toasts and progress texts. A string from the app's
rows, Replicate, a file name, a URL, a query parameter or an exception pasted into them is
read as Markdown: ``[x](https://…)`` becomes a link, ``:red[x]`` a colour, ``$x$`` a
formula, a backtick closes the page's own code span. ``inert`` turns such a string into
Markdown that shows exactly its characters:

- every ASCII punctuation character is backslash-escaped (CommonMark lets any of them be
  escaped, and an escaped one is plain text, never syntax: links, images, emphasis,
  code, HTML, tables, GFM autolinks and Streamlit's ``:name[…]`` directives,
  ``:material/…:`` icons and ``$…$`` math all start with one);
- line breaks and tabs become spaces (a new line could start a heading, a list or a
  code block); other control characters (NUL, C1) are dropped;
- bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), which can
  make a name read backwards, are shown as U+FFFD;
- Streamlit also reads the text itself, after the escapes are undone: GFM turns
  ``https://…``, ``www.…`` and ``name@host.tld`` into links, and Streamlit turns
  ``:material_x:``, ``:streamlit:`` and emoji ``:name:`` into pictures and `` -> ``,
  `` -- ``, `` <= `` … into arrows and dashes. A WORD JOINER (U+2060: no width, no
  break) goes inside each of those, so they stay the characters typed;
- a value longer than ``limit`` characters is cut with an ellipsis, and so is any run
  of characters without a space longer than ``SHORT`` (an id inside a message), so a
  3,000-character id cannot push a sentence off the screen. Ids a person must copy
  whole go in ``st.code`` or a table, which show plain text: never cut there.

Only for Markdown: ``st.code``, ``st.text``, ``st.json``, tables and the options of a
select box show plain text, where the escapes would show. What Streamlit 1.67 draws from
the result was checked in chromium: the characters as given, and no link, picture, icon,
colour, formula or HTML.

Pure (no Streamlit): core messages meant as Markdown use it for their data parts too.
"""

from __future__ import annotations

import re
import string

# An id or name inside a sentence: enough to recognise it, short enough to read.
SHORT = 300
# A whole message (an exception's, a problem's): room for the sentence that explains it.
MESSAGE = 2000
ELLIPSIS = "…"
REPLACEMENT = "\ufffd"
WORD_JOINER = "\u2060"

_BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_SPACES = {"\t", "\n", "\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def _translation() -> tuple[dict[int, str | None], dict[int, str]]:
    """(what to do with control and bidi characters, how to escape punctuation)."""
    clean: dict[int, str | None] = {}
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        clean[code] = None  # control characters: dropped
    for space in _SPACES:
        clean[ord(space)] = " "
    for code in _BIDI_CONTROLS:
        clean[code] = REPLACEMENT
    # string.punctuation is exactly the ASCII punctuation CommonMark lets be escaped.
    escape = {ord(mark): "\\" + mark for mark in string.punctuation}
    return clean, escape


_CLEAN, _ESCAPE = _translation()
# Where a WORD JOINER goes: inside what Streamlit's Markdown finds in plain text once the
# escapes are undone (mdast-util-gfm-autolink-literal's links, Streamlit's text plugins).
_JOIN_AT = re.compile(
    r"(?<=:)(?=//)"  # a URL's scheme separator: https://
    r"|(?<=[Ww][Ww][Ww])(?=\.)"  # www.host
    r"|(?<=@)(?=[-\w])"  # name@host.tld
    r"|(?<=:)(?=[\w+-]+:)"  # :name: (emoji, :material_x:, :streamlit:)
)
_ARROWS = re.compile(r"(?<!\S)(<->|->|<-|--|>=|<=|~=)(?!\S)")
_LONG_RUN = re.compile(rf"\S{{{SHORT + 1},}}")


def cut(text: str, limit: int | None) -> str:
    """``text`` with each run without a space longer than ``SHORT`` cut to its first
    ``SHORT - 1`` characters and an ellipsis, then the whole likewise at ``limit``
    (None: as it is)."""
    if limit is None:
        return text
    text = _LONG_RUN.sub(lambda run: run[0][: SHORT - 1] + ELLIPSIS, text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def inert(text: object, *, limit: int | None = SHORT) -> str:
    """``text`` as Streamlit Markdown that shows its characters and nothing else (see the
    module docstring); ``limit``: the longest value shown whole (None: never cut)."""
    shown = cut(str(text), limit).translate(_CLEAN)
    shown = _ARROWS.sub(lambda found: found[1][0] + WORD_JOINER + found[1][1:], shown)
    return _JOIN_AT.sub(WORD_JOINER, shown).translate(_ESCAPE)
