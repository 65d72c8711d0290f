"""`python -m room_service`: run the RoomService."""

from __future__ import annotations

import sys

from meeting_common.lifecycle import main
from room_service.app import RoomServiceApp
from room_service.config import load_settings

if __name__ == "__main__":
    sys.exit(main(load_settings, RoomServiceApp))
