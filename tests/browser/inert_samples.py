"""Strings Streamlit's Markdown would turn into something else, for the inert render test:
links, pictures, HTML, code, directives, icons, emoji, math, GFM autolinks and tables,
block starts, entities, escapes already there, control and bidi characters."""

from __future__ import annotations

SAMPLES = (
    "[x](https://evil.example)",
    "![x](https://evil.example/i.png)",
    '<a href="https://evil.example">a</a>',
    "<img src=x onerror=alert(1)>",
    "x` [Session expired - sign in again](https://evil.example/login) `.jpg",
    ":red[x] :blue-background[y] :red-badge[z]",
    ":material/warning: and :smile: at 12:30:45",
    ":streamlit: :material_home: ::",
    "$x^2$ and $$y$$",
    "https://evil.example/path www.evil.example a@evil.example",
    "**bold** _it_ ~~strike~~ ~sub~",
    "# heading",
    "- item",
    "1. item",
    "> quote",
    "| a | b |",
    "a -> b <- c <-> d -- e >= f <= g ~= h",
    "\u202egpj.exe \u2066x\u2069",
    "&lt;b&gt; &amp; &#x3C;",
    "\\[x\\](y) back\\slash\\",
    "[^1] <https://evil.example> [ref][r]",
    "nul\x00here",
    "line1\n\n    code\n---",
    "{: .x} ^sup^ %% ;? ,'\"=",
)


_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def as_read(sample: str) -> str:
    """What a reader should see: ``core.text.inert``'s rules on control and bidi
    characters, spaces collapsed as HTML collapses them."""
    kept = []
    for character in sample:
        code = ord(character)
        if character in "\t\n\v\f\r":
            kept.append(" ")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            continue
        elif code in _BIDI:
            kept.append("\ufffd")
        else:
            kept.append(character)
    return " ".join("".join(kept).split())
