"""Shared fixtures of the operations tests: the tools they run."""

from __future__ import annotations

import pytest

from tests.support.prometheus import require_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; FAILS when it is not installed (see `require_tool`)."""
    return require_tool("promtool")
