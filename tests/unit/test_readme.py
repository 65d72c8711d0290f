"""The README says what the code does: the two commands first, every setting listed."""

from __future__ import annotations

from tools.settings_doc import README, settings_markdown


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8").split("## ")[0]
    assert head.index("make run") < head.index("make test")


def test_settings_tables_match_the_code() -> None:
    assert settings_markdown() in README.read_text(encoding="utf-8"), (
        "README settings are stale: run `.venv/bin/python -m tools.settings_doc`"
    )
