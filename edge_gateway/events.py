"""The Socket.IO event names of the frontend's protocol, each defined here once."""

from __future__ import annotations

from meeting.v1 import room_service_pb2 as pb

# Sent by clients.
JOIN_MEETING = "join-meeting"
LEAVE_MEETING = "leave-meeting"
UPDATE_MEDIA = "update-media"
KICK_PARTICIPANT = "kick-participant"
END_MEETING = "end-meeting"
REFRESH_TOKEN = "refresh-token"
# Both ways: a client sends them, the edge relays them to the others.
CHAT_MESSAGE = "chat-message"
WEBRTC_OFFER = "webrtc-offer"
WEBRTC_ANSWER = "webrtc-answer"
WEBRTC_ICE_CANDIDATE = "webrtc-ice-candidate"
# Sent by the edge only.
MEETING_JOINED = "meeting-joined"
PARTICIPANT_JOINED = "participant-joined"
PARTICIPANT_LEFT = "participant-left"
PARTICIPANT_UPDATED = "participant-updated"
MEETING_ENDED = "meeting-ended"
KICKED = "kicked"
ERROR = "error"
TOKEN_EXPIRING = "token-expiring"

SIGNAL_TYPE_OF = {
    WEBRTC_OFFER: pb.SIGNAL_TYPE_OFFER,
    WEBRTC_ANSWER: pb.SIGNAL_TYPE_ANSWER,
    WEBRTC_ICE_CANDIDATE: pb.SIGNAL_TYPE_ICE_CANDIDATE,
}
"""The WebRTC signalling events and the room service's signal type of each."""
SIGNAL_EVENT_OF = {signal_type: event for event, signal_type in SIGNAL_TYPE_OF.items()}
"""The event relaying each signal type."""

BOTH_WAYS = frozenset({CHAT_MESSAGE, *SIGNAL_TYPE_OF})
"""Events clients send and the edge relays."""
CLIENT_EVENTS = (
    frozenset({JOIN_MEETING, LEAVE_MEETING, UPDATE_MEDIA, KICK_PARTICIPANT, END_MEETING, REFRESH_TOKEN})
    | BOTH_WAYS
)
"""Events a client may send."""
SERVER_EVENTS = (
    frozenset({MEETING_JOINED, PARTICIPANT_JOINED, PARTICIPANT_LEFT, PARTICIPANT_UPDATED})
    | frozenset({MEETING_ENDED, KICKED, ERROR, TOKEN_EXPIRING})
    | BOTH_WAYS
)
"""Events the edge may send."""
KNOWN_EVENTS = CLIENT_EVENTS | SERVER_EVENTS
"""Every event of the protocol (a bounded set, e.g. for metric labels)."""
