"""The one character rule for ids and names (meeting_common.text), shared by both tiers."""

from __future__ import annotations

import pytest

from meeting_common.text import unsafe_character

REFUSED = {
    "NUL": "a\x00b",
    "ESC (terminal escapes)": "a\x1b[31mb",
    "newline (a forged log line)": "a\nb",
    "DEL": "a\x7fb",
    "right-to-left override": "a\u202eb",
    "left-to-right isolate": "a\u2066b",
    "zero-width space": "a\u200bb",
    "word joiner": "a\u2060b",
    "byte order mark": "\ufeffab",
    "soft hyphen": "a\u00adb",
    "line separator": "a\u2028b",
    "paragraph separator": "a\u2029b",
    "lone surrogate": "a\ud800b",
}


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_control_and_format_characters_are_refused_in_ids_and_names(text: str) -> None:
    assert unsafe_character(text) is not None
    assert unsafe_character(text, joiners=True) is not None


def test_the_refused_character_is_named_by_code_point() -> None:
    assert unsafe_character("x\u202ey") == "U+202E"


@pytest.mark.parametrize(
    "text", ["Ada Lovelace", "José Núñez", "李小龍", "Zoë 🎉", "user-1-id", "a b\tc".replace("\t", " ")]
)
def test_ordinary_names_pass(text: str) -> None:
    assert unsafe_character(text, joiners=True) is None


def test_joiners_pass_in_names_only_between_visible_characters() -> None:
    persian = "می\u200cخواهم"  # ZWNJ inside a Persian word
    emoji = "\U0001f469\u200d\U0001f4bb"  # woman technologist: a ZWJ sequence
    assert unsafe_character(persian, joiners=True) is None
    assert unsafe_character(emoji, joiners=True) is None
    assert unsafe_character(emoji) == "U+200D"  # never in ids
    for hidden in ("\u200dAdmin", "Admin\u200d", "a \u200d b", "a\u200d\u200db"):
        assert unsafe_character(hidden, joiners=True) == "U+200D", hidden
