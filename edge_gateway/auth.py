"""Authentication at the edge: who a socket is, from the token in its Socket.IO handshake.

`auth_mode=none` (development, `make run`) trusts the `userId` a client sends. With
`auth_mode=jwt` every socket must present `auth: {token}` (or an `Authorization: Bearer`
header): a JWT signed with the shared HS256 secret, or with a key from a public key file,
a local JWKS file or a JWKS URL (RS256/ES256). Its issuer and audience are checked when
configured, its expiry always (with a small leeway). The verified `sub` is the user id;
the optional name claim is the display name. Tokens are never logged.

The settings are checked when they are loaded (`config.Settings.problems`): here a JWT
authenticator is only ever built with exactly one key source.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jwt

from edge_gateway.errors import EdgeError
from edge_gateway.payloads import MAX_ID_LENGTH, MAX_NAME_LENGTH
from meeting_common.codes import ErrorCode
from meeting_common.text import unsafe_character

if TYPE_CHECKING:
    from edge_gateway.config import Settings

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
"""Accepted with a shared secret."""
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")
"""Accepted with a public key, a JWKS file or a JWKS URL (never an HMAC: see _decode)."""

_USER_ID = re.compile(rf"^\S{{1,{MAX_ID_LENGTH}}}$")
_MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller."""

    user_id: str
    """The token's subject: the only userId this socket may join as."""
    user_name: str | None
    """Display name from the token, when it carries one."""
    expires_at: float | None = None
    """The token's `exp` (seconds since the epoch): the socket is closed after it unless
    the client refreshes the token (edge_gateway.expiry)."""


def unauthenticated(message: str) -> EdgeError:
    """The refusal sent back (never containing the token)."""
    return EdgeError(ErrorCode.UNAUTHENTICATED, message)


class Authenticator(Protocol):
    """Turns a handshake into an identity, or refuses it."""

    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity | None:
        """The socket's identity; None when unauthenticated sockets are allowed (dev mode)."""
        ...


class NoAuth:
    """Development mode: everyone is let in and the payload's userId is trusted."""

    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity | None:
        """Always None: no identity to enforce."""
        return None


def token_from(auth: Any, environ: dict[str, Any]) -> str | None:
    """The token from `auth: {token}`, else from an `Authorization: Bearer` header."""
    raw: Any = auth.get("token") if isinstance(auth, dict) else None
    if raw is None:
        raw = environ.get("HTTP_AUTHORIZATION")
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    return raw or None


_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "Token has expired"),
    (jwt.ImmatureSignatureError, "Token is not valid yet"),
    (jwt.InvalidAudienceError, "Token audience is not accepted"),
    (jwt.InvalidIssuerError, "Token issuer is not accepted"),
    (jwt.InvalidSignatureError, "Token signature is invalid"),
    (jwt.InvalidAlgorithmError, "Token algorithm is not accepted"),
    (jwt.DecodeError, "Token is malformed"),
)


class JwtAuthenticator:
    """Verifies JWTs with the one key source the settings name."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        public_key_file, jwks_file = settings.jwt_public_key_file, settings.jwt_jwks_file
        self._public_key = Path(public_key_file).read_text() if public_key_file else None
        self._jwks = jwt.PyJWKSet.from_json(Path(jwks_file).read_text()) if jwks_file else None
        jwks_url = settings.jwt_jwks_url
        self._jwks_client = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._issuer = settings.jwt_issuer or None
        self._audience = [a.strip() for a in settings.jwt_audience.split(",") if a.strip()] or None
        self._leeway = settings.jwt_leeway_seconds
        self._name_claim = settings.jwt_name_claim

    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity | None:
        """The verified identity; raises EdgeError(UNAUTHENTICATED) with the reason."""
        token = token_from(auth, environ)
        if token is None:
            raise unauthenticated("Authentication token is required")
        if len(token) > _MAX_TOKEN_CHARS:
            raise unauthenticated("Token is malformed")
        try:
            key, algorithms = await self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise unauthenticated(f"Token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            raise unauthenticated(_reason(exc)) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _USER_ID.match(subject) or unsafe_character(subject):
            raise unauthenticated("Token subject is not a valid user id")
        name = claims.get(self._name_claim)
        if (
            not isinstance(name, str)
            or not 0 < len(name.strip()) <= MAX_NAME_LENGTH
            or unsafe_character(name, joiners=True)
        ):
            name = None  # the join's userName (validated like any other) is used instead
        expires_at = claims.get("exp")
        return Identity(
            user_id=subject,
            user_name=name.strip() if name else None,
            expires_at=float(expires_at) if isinstance(expires_at, int | float) else None,
        )

    async def _key_for(self, token: str) -> tuple[Any, list[str]]:
        # Each key source admits only its own family of algorithms, so a token cannot pick
        # HS256 and have a public key used as its HMAC secret (algorithm confusion).
        if self._secret:
            return self._secret, list(HMAC_ALGORITHMS)
        if self._public_key is not None:
            return self._public_key, list(PUBLIC_KEY_ALGORITHMS)
        if self._jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self._jwks.keys
            try:
                jwk = self._jwks[kid] if kid else (keys[0] if len(keys) == 1 else None)
            except KeyError:
                jwk = None
            if jwk is None:
                raise jwt.InvalidSignatureError("no key for this token")
            return jwk.key, _public_only(jwk.algorithm_name)
        assert self._jwks_client is not None
        # The client fetches (and caches) the JWKS over HTTP: blocking, so off the loop.
        jwk = await asyncio.to_thread(self._jwks_client.get_signing_key_from_jwt, token)
        return jwk.key, _public_only(jwk.algorithm_name)


def _public_only(algorithm: str) -> list[str]:
    return [algorithm] if algorithm in PUBLIC_KEY_ALGORITHMS else list(PUBLIC_KEY_ALGORITHMS)


def _reason(exc: Exception) -> str:
    for kind, message in _REFUSALS:
        if isinstance(exc, kind):
            return message
    return "Token is invalid"


def authenticator_for(settings: Settings) -> Authenticator:
    """The authenticator `auth_mode` asks for ("none" or "jwt")."""
    return NoAuth() if settings.auth_mode == "none" else JwtAuthenticator(settings)
