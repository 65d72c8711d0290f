"""Which characters user-given text may hold, for both tiers.

- Ids (meetingId, userId, participantId, a token's subject): no control or format
  character at all (Unicode categories Cc, Cf), no line or paragraph separator.
- Names (userName, a token's name claim): the same, except the zero-width joiner and
  non-joiner (U+200C, U+200D), which Persian and Indic scripts and emoji sequences need.
- Chat text: newline and tab are allowed; every other C0/C1 control, the bidirectional
  embedding, override and isolate controls (U+202A to U+202E, U+2066 to U+2069) and the line
  and paragraph separators are refused. Other format characters (zero-width joiners,
  soft hyphens) are allowed: they cannot reorder or hide the surrounding text.
"""

from __future__ import annotations

import unicodedata

_SEPARATORS = frozenset({"Zl", "Zp"})
_NAME_JOINERS = frozenset({"\u200c", "\u200d"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CHAT_CONTROLS_ALLOWED = frozenset("\n\t")


def _category(ch: str) -> str:
    return unicodedata.category(ch)


def id_problem(text: str) -> str | None:
    """Why `text` cannot be an id, or None."""
    for ch in text:
        if _category(ch) in ("Cc", "Cf") or _category(ch) in _SEPARATORS:
            return f"must not contain control or format characters (U+{ord(ch):04X})"
    return None


def name_problem(text: str) -> str | None:
    """Why `text` cannot be a display name, or None."""
    for ch in text:
        category = _category(ch)
        if category == "Cf" and ch in _NAME_JOINERS:
            continue
        if category in ("Cc", "Cf") or category in _SEPARATORS:
            return f"must not contain control or format characters (U+{ord(ch):04X})"
    return None


def chat_problem(text: str) -> str | None:
    """Why `text` cannot be a chat message, or None."""
    for ch in text:
        if ch in _CHAT_CONTROLS_ALLOWED:
            continue
        if _category(ch) == "Cc" or ch in _BIDI_CONTROLS or _category(ch) in _SEPARATORS:
            return f"must not contain control characters other than newline and tab (U+{ord(ch):04X})"
    return None


def printable(text: str) -> str:
    """`text` with every control, format and separator character written as a JSON-style
    `\\uXXXX` escape (a surrogate pair beyond the BMP), so that a value written into a
    log line can neither end it nor restyle or reorder it, and JSON lines stay valid."""
    out = []
    for ch in text:
        category = _category(ch)
        if category in ("Cc", "Cf") or category in _SEPARATORS:
            code = ord(ch)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
