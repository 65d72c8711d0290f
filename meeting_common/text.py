"""Which characters user-given text may hold: the rules both tiers share.

Control characters (NUL, ESC, line breaks), Unicode format characters (bidi overrides
such as RLO, zero-width spaces, the BOM, soft hyphens), surrogates and line/paragraph
separators are refused: they forge or hide log lines and make one name look like
another. In names the two joiners (ZWNJ U+200C, ZWJ U+200D) are allowed between two
visible characters, because Persian words and emoji sequences need them.

Chat text (`chat_problem`) is text, not a name: newline and tab are allowed, and so are
the joiners and soft hyphens; every other C0/C1 control, the bidi embedding, override
and isolate controls (U+202A to U+202E, U+2066 to U+2069), surrogates and line/paragraph
separators are refused. `printable` escapes what a log line must not carry raw.
"""

from __future__ import annotations

import unicodedata

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# `str.isprintable()` is false for every character of the categories "Other" and
# "Separator" but the ASCII space: a printable text holds none of the refused ones, and
# that check runs in C (these rules run on every join's ids and every log line's values).
_JOINERS = frozenset({"\u200c", "\u200d"})


def _visible(char: str) -> bool:
    return not char.isspace() and unicodedata.category(char) not in _REFUSED_CATEGORIES


def unsafe_character(text: str, *, joiners: bool = False) -> str | None:
    """The first character `text` may not hold (as `U+XXXX`), or None when it is clean.

    With `joiners`, ZWNJ and ZWJ are accepted where both neighbours are visible."""
    if text.isprintable():
        return None
    for index, char in enumerate(text):
        if unicodedata.category(char) not in _REFUSED_CATEGORIES:
            continue
        if (
            joiners
            and char in _JOINERS
            and 0 < index < len(text) - 1
            and _visible(text[index - 1])
            and _visible(text[index + 1])
        ):
            continue
        return f"U+{ord(char):04X}"
    return None


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CHAT_CONTROLS_ALLOWED = frozenset("\n\t")
_CHAT_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def chat_problem(text: str) -> str | None:
    """Why `text` cannot be a chat message, or None."""
    if text.isprintable():
        return None
    for char in text:
        if char in _CHAT_CONTROLS_ALLOWED:
            continue
        if unicodedata.category(char) in _CHAT_REFUSED_CATEGORIES or char in _BIDI_CONTROLS:
            return f"must not contain control characters other than newline and tab (U+{ord(char):04X})"
    return None


def printable(text: str) -> str:
    """`text` with every character the id rule refuses written as a JSON-style `\\uXXXX`
    escape (a surrogate pair beyond the BMP), so that a value written into a log line can
    neither end it nor restyle or reorder it, and JSON lines stay valid."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if unicodedata.category(char) not in _REFUSED_CATEGORIES:
            out.append(char)
            continue
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)
