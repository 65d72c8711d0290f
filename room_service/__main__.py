"""`python -m room_service`: run the RoomService."""

from __future__ import annotations

import asyncio
import sys

from meeting_common.logs import configure_logging
from meeting_common.settings import SettingsError
from room_service.app import serve
from room_service.config import load_settings


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
