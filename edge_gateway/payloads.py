"""Client → edge payloads, validated with pydantic. Anything else is INVALID_PAYLOAD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from edge_gateway.errors import EdgeError
from meeting_common.codes import ErrorCode
from meeting_common.text import chat_problem, unsafe_character

MAX_SIGNAL_DEPTH = 32
"""Deepest nesting of arrays and objects in a WebRTC signal (real SDP and ICE payloads
are two or three levels deep)."""
MAX_ID_LENGTH = 128
"""Longest id (meetingId, userId, participantId) a payload may carry."""
MAX_NAME_LENGTH = 100
"""Longest userName a payload may carry; `--max-name-length` may allow less."""
MAX_TEXT_LENGTH = 4000
"""Longest chat text a payload may carry; `--max-text-length` may allow less."""


def _id_text(value: Any) -> Any:
    # Database ids often arrive as numbers; accept them as their decimal text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _refusing(problem: Callable[[str], str | None]) -> AfterValidator:
    """A validator refusing text for which `problem` names a reason."""

    def check(value: str) -> str:
        reason = problem(value)
        if reason is not None:
            raise PydanticCustomError("text", reason)
        return value

    return AfterValidator(check)


def _id_problem(text: str) -> str | None:
    char = unsafe_character(text)
    return None if char is None else f"must not contain control or format characters ({char})"


def _name_problem(text: str) -> str | None:
    char = unsafe_character(text, joiners=True)
    return None if char is None else f"must not contain control or format characters ({char})"


Id = Annotated[
    str,
    BeforeValidator(_id_text),
    Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^\S+$"),
    _refusing(_id_problem),
]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), _refusing(_name_problem)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class JoinMeeting(_Payload):
    """`join-meeting`."""

    meetingId: Id
    userId: Id
    userName: Name
    meeting_password: Annotated[str, Field(max_length=256)] | None = None
    audio: StrictBool | None = None
    video: StrictBool | None = None


class LeaveMeeting(_Payload):
    """`leave-meeting`."""

    meetingId: Id | None = None


class UpdateMedia(_Payload):
    """`update-media`: at least one of the three."""

    audio: StrictBool | None = None
    video: StrictBool | None = None
    screen: StrictBool | None = None

    def changes(self) -> dict[str, bool]:
        """The fields the client set."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class WebRtcSignal(_Payload):
    """`webrtc-offer`, `webrtc-answer`, `webrtc-ice-candidate`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    targetParticipantId: Id


class ChatMessage(_Payload):
    """`chat-message`."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH), _refusing(chat_problem)]


class KickParticipant(_Payload):
    """`kick-participant`."""

    participantId: Id


class EndMeeting(_Payload):
    """`end-meeting`."""


class RefreshToken(_Payload):
    """`refresh-token`: a new JWT for the socket's user."""

    token: Annotated[str, Field(min_length=1, max_length=8192)]


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (iterative: a hostile
    payload cannot exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_SIGNAL_DEPTH:
            return deepest  # enough to refuse it; no need to walk the rest
        stack.extend((child, depth) for child in children)
    return deepest


P = TypeVar("P", bound=BaseModel)


def parse(model: type[P], args: tuple[Any, ...], *, optional: bool = False) -> P:
    """Validates the event's single argument; an absent argument is `{}` when optional."""
    if not args and optional:
        args = ({},)
    if len(args) != 1 or not isinstance(args[0], dict):
        raise EdgeError(ErrorCode.INVALID_PAYLOAD, "Payload must be a single JSON object")
    try:
        return model.model_validate(args[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise EdgeError(ErrorCode.INVALID_PAYLOAD, f"Invalid {where}: {first['msg']}") from None
