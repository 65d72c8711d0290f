"""`python -m edge_gateway`: run an edge gateway."""

from __future__ import annotations

import asyncio
import sys

from edge_gateway.app import serve
from edge_gateway.config import load_settings
from meeting_common.logs import configure_logging
from meeting_common.settings import SettingsError


def main() -> int:
    """Parses settings, configures logging, serves until signalled."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
