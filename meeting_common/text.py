"""Which characters a display name or an id may hold: the one rule both tiers share.

Control characters (NUL, ESC, line breaks), Unicode format characters (bidi overrides
such as RLO, zero-width spaces, the BOM, soft hyphens), surrogates and line/paragraph
separators are refused: they forge or hide log lines and make one name look like
another. In names the two joiners (ZWNJ U+200C, ZWJ U+200D) are allowed between two
visible characters, because Persian words and emoji sequences need them.
"""

from __future__ import annotations

import unicodedata

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _visible(char: str) -> bool:
    return not char.isspace() and unicodedata.category(char) not in _REFUSED_CATEGORIES


def unsafe_character(text: str, *, joiners: bool = False) -> str | None:
    """The first character `text` may not hold (as `U+XXXX`), or None when it is clean.

    With `joiners`, ZWNJ and ZWJ are accepted where both neighbours are visible."""
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
