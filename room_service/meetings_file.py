"""Loads the meetings registered at start (the demo meetings by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from room_service.domain.models import Meeting, MeetingStatus


@dataclass(frozen=True, slots=True)
class MeetingSeed:
    """A meeting from the file, with its plaintext password (hashed before storing)."""

    meeting: Meeting
    """The meeting."""
    password: str | None
    """Its password, or None."""


def load_meetings(path: str) -> list[MeetingSeed]:
    """Parses a JSON list of {id, meeting_name, status, creator_id, password?, max_participants?,
    guests_can_share?, guests_can_chat?}."""
    if not path:
        return []
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of meetings")
    seeds = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ValueError(f"{path}: entry {index} needs at least an 'id'")
        meeting = Meeting(
            id=str(entry["id"]),
            meeting_name=str(entry.get("meeting_name", entry["id"])),
            status=MeetingStatus(entry.get("status", "live")),
            creator_id=str(entry.get("creator_id", "")),
            created_at=datetime.now(UTC),
            max_participants=int(entry.get("max_participants", 0)),
            guests_can_share=_flag(entry, "guests_can_share", path, index),
            guests_can_chat=_flag(entry, "guests_can_chat", path, index),
        )
        seeds.append(MeetingSeed(meeting, entry.get("password") or None))
    return seeds


def _flag(entry: dict[str, object], key: str, path: str, index: int) -> bool:
    value = entry.get(key, True)
    if not isinstance(value, bool):
        raise ValueError(f"{path}: entry {index}: {key!r} must be true or false")
    return value
