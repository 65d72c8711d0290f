"""Redis URLs: one server (`redis://`, `rediss://` for TLS), a Sentinel-managed primary
(`redis+sentinel://`, `rediss+sentinel://`) or a Redis Cluster (`redis+cluster://`,
`rediss+cluster://`, naming any of its nodes), user and password in the URL.

A Sentinel URL lists the Sentinels and names the primary:
`redis+sentinel://[user:password@]sentinel-1:26379,sentinel-2:26379/<primary name>[/<db>]`.
The password is the primary's (and the Sentinels', when they ask for one). Messages here
never repeat a URL: it may hold a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where the Sentinels are and which primary they watch."""

    sentinels: list[tuple[str, int]]
    """Each Sentinel's host and port."""
    primary: str
    """The monitored primary's name."""
    db: int = 0
    """Logical database."""
    username: str | None = None
    """ACL user, if any."""
    password: str | None = field(default=None, repr=False)
    """The password, if any."""
    tls: bool = False
    """rediss+sentinel: TLS to the primary."""


def url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL (None when nothing)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        return "expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL (or rediss+...)"
    if parts.scheme.endswith("+sentinel"):
        try:
            sentinel_target(url)
        except ValueError as exc:
            return str(exc)
        return None
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return "the URL's port is not a number"
    if not parts.hostname:
        return "the URL names no host"
    return None


def sentinel_target(url: str) -> SentinelTarget:
    """Parses a Sentinel URL; ValueError (without the URL) when it is malformed."""
    parts = urlsplit(url.strip())
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("each Sentinel must be given as host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("the URL names no primary (redis+sentinel://sentinels/<primary>/<db>)")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("expected /<primary> or /<primary>/<db> after the Sentinels")
    return SentinelTarget(
        sentinels=sentinels,
        primary=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
        tls=parts.scheme.startswith("rediss"),
    )


def cluster_node_url(url: str) -> str:
    """The plain URL of the node a cluster URL names (the client discovers the others)."""
    scheme, _, rest = url.strip().partition("://")
    return f"{scheme.removesuffix('+cluster')}://{rest}"


def redacted(url: str) -> str:
    """The URL without its user and password, for logs."""
    parts = urlsplit(url.strip())
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"
