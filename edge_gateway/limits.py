"""Per-socket and per-address limits at the edge: event rate, wrong-password attempts,
connections per client address, and name/text lengths.

Everything here is in-memory and per edge process; no I/O. The clock is injectable so
the rules can be tested without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edge_gateway.errors import EdgeError
from edge_gateway.events import CHAT_MESSAGE, JOIN_MEETING
from edge_gateway.payloads import MAX_NAME_LENGTH, MAX_TEXT_LENGTH
from meeting_common.codes import ErrorCode
from meeting_common.settings import Count

Clock = Callable[[], float]


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; one token per event."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self) -> bool:
        """Spends a token; False (and nothing spent) when the bucket is empty."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class FailureWindow:
    """At most `limit` failures in any `window` seconds."""

    __slots__ = ("_clock", "_failures", "_limit", "_window")

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: deque[float] = deque()

    def _expire(self) -> None:
        cutoff = self._clock() - self._window
        while self._failures and self._failures[0] <= cutoff:
            self._failures.popleft()

    def blocked(self) -> bool:
        """True while the window holds `limit` failures."""
        self._expire()
        return len(self._failures) >= self._limit

    def fail(self) -> None:
        """Records one failure."""
        self._expire()
        self._failures.append(self._clock())


class LimitSettings(BaseModel):
    """The edge's limits: declared here once, each an EDGE_GATEWAY_* setting of the edge."""

    model_config = ConfigDict(frozen=True)

    events_per_second: float = Field(
        20, gt=0, allow_inf_nan=False, description="sustained client events per socket; more get RATE_LIMITED"
    )
    event_burst: Count = Field(40, description="client events a socket may send at once")
    password_attempts_per_minute: Count = Field(
        5, description="wrong meeting passwords per socket per minute before joins get RATE_LIMITED"
    )
    max_connections_per_address: Count = Field(
        50,
        description="open Engine.IO sessions per client IP address, connected or not (handshakes beyond "
        "twice this are refused); behind --trusted-proxies the forwarded client's address",
    )
    max_name_length: int = Field(
        MAX_NAME_LENGTH,
        gt=0,
        le=MAX_NAME_LENGTH,
        description=f"longest userName, in characters (at most {MAX_NAME_LENGTH})",
    )
    max_text_length: int = Field(
        2000,
        gt=0,
        le=MAX_TEXT_LENGTH,
        description=f"longest chat text, in characters (at most {MAX_TEXT_LENGTH})",
    )


_RATE_LIMITED = "Too many events, slow down"
_PASSWORD_LIMITED = "Too many wrong passwords, try again later"


class EdgeLimits:
    """The limits of one edge process, keyed by socket id and client address."""

    def __init__(self, settings: LimitSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._passwords: dict[str, FailureWindow] = {}
        self._addresses: dict[str, int] = {}
        self._engine_address: dict[str, str] = {}

    # -- connections ------------------------------------------------------------------
    #
    # Counted per Engine.IO session from its handshake, not from the Socket.IO connect:
    # a session that never connects (or closes while its token is being checked) still
    # holds a slot, and the slot is freed whenever the session closes, however it closes.

    def open_engine(self, eio_sid: str, address: str) -> bool:
        """Counts a new Engine.IO session; False (nothing counted) past the hard cap,
        twice the per-address limit, so that unconnected handshakes cannot pile up."""
        count = self._addresses.get(address, 0)
        if count >= 2 * self.settings.max_connections_per_address:
            return False
        self._addresses[address] = count + 1
        self._engine_address[eio_sid] = address
        return True

    def close_engine(self, eio_sid: str) -> None:
        """Frees a closed Engine.IO session's slot (idempotent)."""
        address = self._engine_address.pop(eio_sid, None)
        if address is None:
            return
        left = self._addresses.get(address, 1) - 1
        if left > 0:
            self._addresses[address] = left
        else:
            self._addresses.pop(address, None)

    def engine_open(self, eio_sid: str) -> bool:
        """True while the Engine.IO session is open."""
        return eio_sid in self._engine_address

    def admit(self, sid: str, eio_sid: str) -> bool:
        """Admits a Socket.IO connect on an open session; False when its address holds
        more sessions than the limit (this one included)."""
        address = self._engine_address.get(eio_sid)
        if address is None or self._addresses[address] > self.settings.max_connections_per_address:
            return False
        s = self.settings
        self._buckets[sid] = TokenBucket(s.events_per_second, s.event_burst, self._clock)
        return True

    def release(self, sid: str) -> None:
        """Forgets a disconnected socket's per-socket state (idempotent)."""
        self._buckets.pop(sid, None)
        self._passwords.pop(sid, None)

    def connections(self, address: str) -> int:
        """Open Engine.IO sessions counted for `address`."""
        return self._addresses.get(address, 0)

    # -- events -----------------------------------------------------------------------

    def check_event(self, sid: str, event: str, args: tuple[Any, ...]) -> None:
        """Before a handler runs: raises RATE_LIMITED or INVALID_PAYLOAD; changes nothing else."""
        bucket = self._buckets.get(sid)
        if bucket is not None and not bucket.take():
            raise EdgeError(ErrorCode.RATE_LIMITED, _RATE_LIMITED)
        if event == JOIN_MEETING:
            window = self._passwords.get(sid)
            if window is not None and window.blocked():
                raise EdgeError(ErrorCode.RATE_LIMITED, _PASSWORD_LIMITED)
        self._check_lengths(event, args)

    def record_error(self, sid: str, event: str, code: ErrorCode, args: tuple[Any, ...]) -> None:
        """After a handler failed: counts wrong passwords per socket (a join without a
        password is the client asking whether one is needed, not a guess)."""
        if event != JOIN_MEETING or code is not ErrorCode.INVALID_PASSWORD or sid not in self._buckets:
            return
        payload = args[0] if args and isinstance(args[0], dict) else {}
        if not payload.get("meeting_password"):
            return
        window = self._passwords.get(sid)
        if window is None:
            window = FailureWindow(self.settings.password_attempts_per_minute, 60.0, self._clock)
            self._passwords[sid] = window
        window.fail()

    def _check_lengths(self, event: str, args: tuple[Any, ...]) -> None:
        # The payload models cap lengths at fixed maxima; these are the configured, tighter
        # limits, checked on the raw payload so the message names the setting's value.
        payload = args[0] if len(args) == 1 and isinstance(args[0], dict) else None
        if payload is None:
            return
        s = self.settings
        if event == JOIN_MEETING:
            _max_length(payload, "userName", s.max_name_length)
        elif event == CHAT_MESSAGE:
            _max_length(payload, "text", s.max_text_length)


def _max_length(payload: dict[str, Any], field: str, limit: int) -> None:
    value = payload.get(field)
    if isinstance(value, str) and len(value.strip()) > limit:
        raise EdgeError(ErrorCode.INVALID_PAYLOAD, f"Invalid {field}: longer than {limit} characters")
