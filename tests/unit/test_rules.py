"""Who may do what (room_service/domain/rules.py), each rule on its own: the host and
the guests of a meeting, and an internal service (an empty requester)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from room_service.domain import rules
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import MediaState, Meeting, MeetingStatus, Participant
from room_service.domain.requests import MediaChange

HOST = "host-user"


def _meeting(status: MeetingStatus = MeetingStatus.LIVE, *, guests: bool = True) -> Meeting:
    return Meeting(
        id="m",
        meeting_name="M",
        status=status,
        creator_id=HOST,
        created_at=datetime.now(UTC),
        guests_can_share=guests,
        guests_can_chat=guests,
    )


def _participant(user_id: str, meeting: Meeting | None = None) -> Participant:
    return Participant(
        participant_id=f"participant-{user_id}",
        user_id=user_id,
        user_name=user_id,
        media=MediaState(),
        permissions=rules.permissions_for(meeting or _meeting(), user_id),
        joined_at=datetime.now(UTC),
        edge_id="edge",
        socket_id=f"sock-{user_id}",
    )


def _refused(rule: Callable[[], None], code: ErrorCode, message: str) -> None:
    with pytest.raises(DomainError) as caught:
        rule()
    assert (caught.value.code, caught.value.message) == (code, message)


def test_an_empty_requester_is_an_internal_service() -> None:
    assert rules.is_internal("")
    assert not rules.is_internal("participant-x")


@pytest.mark.parametrize(
    ("status", "joinable"),
    [
        (MeetingStatus.SCHEDULED, True),
        (MeetingStatus.LIVE, True),
        (MeetingStatus.ENDED, False),
    ],
)
def test_joins_only_while_the_meeting_is_open(status: MeetingStatus, joinable: bool) -> None:
    if joinable:
        rules.require_joinable(_meeting(status))
    else:
        _refused(
            lambda: rules.require_joinable(_meeting(status)),
            ErrorCode.MEETING_NOT_ACTIVE,
            "Meeting is not active",
        )


def test_only_the_host_or_a_service_ends_the_meeting() -> None:
    rules.require_may_end(_participant(HOST))
    rules.require_may_end(None)
    _refused(
        lambda: rules.require_may_end(_participant("guest")),
        ErrorCode.FORBIDDEN,
        "Only the host can end the meeting",
    )


def test_only_the_host_or_a_service_kicks_and_the_host_not_itself() -> None:
    host, guest = _participant(HOST), _participant("guest")
    rules.require_may_kick(host, guest.participant_id)
    rules.require_may_kick(None, guest.participant_id)
    _refused(
        lambda: rules.require_may_kick(guest, host.participant_id),
        ErrorCode.FORBIDDEN,
        "Only the host can remove participants",
    )
    _refused(
        lambda: rules.require_may_kick(host, host.participant_id),
        ErrorCode.INVALID_PAYLOAD,
        "The host cannot kick itself; use leave-meeting",
    )


def _media_of(target: Participant, changed_by: str, **media: bool) -> MediaChange:
    return MediaChange("m", target.participant_id, changed_by, **media)


def test_media_of_others_only_by_a_service() -> None:
    guest, other = _participant("guest"), _participant("other")
    rules.require_may_change_media(guest, _media_of(guest, guest.participant_id, audio=False))
    rules.require_may_change_media(guest, _media_of(guest, "", audio=False))
    _refused(
        lambda: rules.require_may_change_media(guest, _media_of(guest, other.participant_id, audio=False)),
        ErrorCode.FORBIDDEN,
        "Participants change only their own media",
    )


def test_screen_sharing_needs_the_permission_to_share() -> None:
    locked = _meeting(guests=False)
    guest, host = _participant("guest", locked), _participant(HOST, locked)
    rules.require_may_change_media(host, _media_of(host, host.participant_id, screen=True))
    rules.require_may_change_media(guest, _media_of(guest, guest.participant_id, screen=False))
    for requester in (guest.participant_id, ""):  # not even a service turns it on
        _refused(
            functools.partial(
                rules.require_may_change_media, guest, _media_of(guest, requester, screen=True)
            ),
            ErrorCode.FORBIDDEN,
            "Screen sharing is not allowed",
        )


def test_chat_needs_the_permission_to_chat() -> None:
    rules.require_may_chat(_participant("guest"))
    locked = _meeting(guests=False)
    rules.require_may_chat(_participant(HOST, locked))
    _refused(
        lambda: rules.require_may_chat(_participant("guest", locked)),
        ErrorCode.FORBIDDEN,
        "Chat is not allowed",
    )


def test_random_ids_are_version_4_uuids() -> None:
    ids = {rules.random_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
