"""The `webrtcConfig` of `meeting-joined`: ICE servers from the settings, and short-lived
TURN credentials per the TURN REST API convention that coturn's `use-auth-secret` checks.

TURN REST API (draft-uberti-behave-turn-rest-00, coturn `--use-auth-secret`): the
username is `<expiry unix time>:<user id>` and the password is
`base64(HMAC-SHA1(shared secret, username))`. The TURN server recomputes the HMAC with
the same secret and refuses the username once its expiry has passed, so the secret never
leaves the backend and a leaked credential dies on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from meeting_common.settings import from_text

_SCHEMES = ("stun:", "turn:", "turns:")


@dataclass(frozen=True, slots=True)
class IceServer:
    """One RTCIceServer entry as the browser's RTCPeerConnection takes it."""

    urls: tuple[str, ...]
    """`stun:`, `turn:` or `turns:` URLs."""
    username: str | None = None
    """Static TURN username, if any."""
    credential: str | None = None
    """Static TURN password, if any."""

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for `iceServers[]`."""
        entry: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            entry["username"] = self.username
        if self.credential is not None:
            entry["credential"] = self.credential
        return entry


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip().startswith(_SCHEMES):
        raise ValueError(f"ICE server URL must start with stun:, turn: or turns:; got {url!r}")
    return url.strip()


def parse_ice_servers(text: str) -> tuple[IceServer, ...]:
    """Parses a JSON list of `{urls, username?, credential?}` (`urls` a string or list)."""
    if not text.strip():
        return ()
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError("expected a JSON list of {urls, username?, credential?}")
    servers = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "urls" not in entry:
            raise ValueError(f"entry {index} needs 'urls'")
        raw_urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
        if not raw_urls:
            raise ValueError(f"entry {index} has no urls")
        extra = set(entry) - {"urls", "username", "credential"}
        if extra:
            raise ValueError(f"entry {index} has unknown keys {sorted(extra)}")
        username, credential = entry.get("username"), entry.get("credential")
        for name, value in (("username", username), ("credential", credential)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"entry {index}: {name} must be a string")
        servers.append(IceServer(tuple(_check_url(u) for u in raw_urls), username, credential))
    return tuple(servers)


def parse_turn_urls(text: str) -> tuple[str, ...]:
    """Parses a comma-separated list of `turn:`/`turns:` URLs (empty for none)."""
    urls = tuple(_check_url(item) for item in text.split(",") if item.strip())
    for url in urls:
        if not url.startswith(("turn:", "turns:")):
            raise ValueError(f"TURN URL must start with turn: or turns:; got {url!r}")
    return urls


IceServers = Annotated[tuple[IceServer, ...], from_text(parse_ice_servers)]
"""A setting's ICE servers, given as the text `parse_ice_servers` reads."""
TurnUrls = Annotated[tuple[str, ...], from_text(parse_turn_urls)]
"""A setting's TURN URLs, given as the text `parse_turn_urls` reads."""


def turn_rest_credential(secret: str, user_id: str, expires_at: int) -> tuple[str, str]:
    """`(username, credential)` for a TURN server sharing `secret`, valid until `expires_at`."""
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


class WebRtcConfigBuilder:
    """Builds `webrtcConfig` per joining user; the TURN secret stays in here."""

    def __init__(
        self,
        ice_servers: Sequence[IceServer] = (),
        turn_urls: Sequence[str] = (),
        turn_secret: str = "",
        turn_ttl_seconds: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if turn_urls and not turn_secret:
            raise ValueError("TURN URLs need a shared secret")
        self._static = [server.to_wire() for server in ice_servers]
        self._turn_urls = list(turn_urls)
        self._secret = turn_secret
        self._ttl = turn_ttl_seconds
        self._clock = clock

    def __repr__(self) -> str:
        # Never show the secret, e.g. in a traceback's locals.
        return f"WebRtcConfigBuilder(static={len(self._static)}, turn_urls={self._turn_urls!r})"

    def __call__(self, user_id: str, not_after: float | None = None) -> dict[str, Any]:
        """The `webrtcConfig` object for one user's `meeting-joined`; its TURN credentials
        expire after the TTL, or at `not_after` (the user's token expiry) if sooner."""
        servers = list(self._static)
        if self._turn_urls:
            expires_at = int(self._clock()) + self._ttl
            if not_after is not None:
                expires_at = min(expires_at, int(not_after))
            username, credential = turn_rest_credential(self._secret, user_id, expires_at)
            servers.append({"urls": list(self._turn_urls), "username": username, "credential": credential})
        return {"iceServers": servers}
