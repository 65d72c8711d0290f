"""Authentication at the edge with real tokens signed here, against real processes and
the official socket.io-client: who gets in, who is refused and why, and that a token
binds the socket to one userId."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio

from tests.support.jsclient import JsClient, JsClientPool, JsCommandError
from tests.support.managed import ManagedProcess
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    RoomServiceProcess,
    edge_argv,
    start_edge,
    start_room_service,
)
from tests.support.room import join, join_payload, refused

from . import keys

pytestmark = pytest.mark.timeout(120)

JWT_ARGS = ("--auth-mode", "jwt", "--jwt-issuer", keys.ISSUER, "--jwt-audience", keys.AUDIENCE)


JWT_EDGE_ARGS = (*JWT_ARGS, "--jwt-leeway-seconds", "5")
JWT_EDGE_ENV = {"EDGE_GATEWAY_JWT_SECRET": keys.HS_SECRET}


@pytest.fixture
async def jwt_edge(room_service: RoomServiceProcess) -> AsyncIterator[EdgeProcess]:
    """An edge in jwt mode with the HS256 secret given by environment variable."""
    async with await start_edge(
        room_service.grpc_address, *JWT_EDGE_ARGS, env=JWT_EDGE_ENV, name="edge-jwt"
    ) as proc:
        yield proc


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def refusing_edge() -> AsyncIterator[tuple[EdgeProcess, JsClientPool]]:
    """The `jwt_edge` setup, and a client driver, shared by the bad-token cases: each is
    refused at connect, before anything reaches the room service, and uses a client of
    its own, so none needs fresh processes (13 cases, three processes each)."""
    async with (
        await start_room_service(*QUICK_STOP, name="rs-refusing") as rs,
        await start_edge(rs.grpc_address, *JWT_EDGE_ARGS, env=JWT_EDGE_ENV, name="edge-jwt-refusing") as edge,
        JsClientPool() as pool,
    ):
        yield edge, pool


async def connect_refused(client: JsClient, url: str, auth: dict[str, Any] | None) -> dict[str, Any]:
    """Connects expecting a refusal; returns the connect_error payload."""
    options: dict[str, Any] = {"transports": ["websocket"]}
    if auth is not None:
        options["auth"] = auth
    with pytest.raises(JsCommandError) as info:
        await client.connect(url, **options)
    assert info.value.code == "CONNECT_ERROR"
    event = client.events_named("connect_error")[-1]
    assert isinstance(event.data, dict)
    return event.data


async def test_valid_token_joins_with_its_subject_and_name(jwt_edge: EdgeProcess, js: JsClientPool) -> None:
    a = js.client("a")
    await a.connect(jwt_edge.url, auth={"token": keys.token("user-1-id", name="Alice From Token")})
    reply = await join(a, "user-1-id", name="Typed Name")
    assert reply["success"] is True, reply
    assert reply["participant"]["userId"] == "user-1-id"
    # The verified name claim wins over whatever the client typed.
    assert reply["participant"]["userName"] == "Alice From Token"

    b = js.client("b")
    await b.connect(jwt_edge.url, auth={"token": keys.token("user-2-id")})
    joined = await join(b, "user-2-id", name="Bob")
    assert joined["success"] is True
    assert [p["userName"] for p in joined["participants"]] == ["Alice From Token"]
    # Without a name claim the payload's userName is used.
    seen = await a.wait_for_event("participant-joined")
    assert seen.data["userName"] == "Bob"


async def test_join_as_another_user_is_forbidden_and_changes_nothing(
    jwt_edge: EdgeProcess, js: JsClientPool
) -> None:
    watcher = js.client("watcher")
    await watcher.connect(jwt_edge.url, auth={"token": keys.token("user-9-id")})
    ok = await join(watcher, "user-9-id", name="Watcher")
    assert ok["success"] is True

    mallory = js.client("mallory")
    await mallory.connect(jwt_edge.url, auth={"token": keys.token("user-2-id")})
    await refused(mallory, "join-meeting", join_payload("user-1-id", name="Not Me"), "FORBIDDEN")
    await watcher.expect_no_event("participant-joined", within=1.0)
    # The socket stays usable: joining as itself works.
    again = await join(mallory, "user-2-id", name="Me")
    assert again["success"] is True


@pytest.mark.parametrize(
    ("case", "make_auth", "message"),
    [
        ("missing", lambda: None, "Authentication token is required"),
        ("empty", lambda: {"token": ""}, "Authentication token is required"),
        ("not a string", lambda: {"token": 12345}, "Authentication token is required"),
        ("garbage", lambda: {"token": "not-a-jwt"}, "Token is malformed"),
        ("expired", lambda: {"token": keys.token(expires_in=-60)}, "Token has expired"),
        (
            "wrong key",
            lambda: {"token": keys.token(key="another-secret-another-secret-1234")},
            "Token signature is invalid",
        ),
        (
            "wrong audience",
            lambda: {"token": keys.token(audience="billing")},
            "Token audience is not accepted",
        ),
        (
            "wrong issuer",
            lambda: {"token": keys.token(issuer="https://evil.invalid")},
            "Token issuer is not accepted",
        ),
        ("no expiry", lambda: {"token": keys.token(expires_in=None)}, "Token lacks the exp claim"),
        ("no subject", lambda: {"token": keys.token(sub=None)}, "Token lacks the sub claim"),
        ("not yet valid", lambda: {"token": keys.token(nbf=9_999_999_999)}, "Token is not valid yet"),
        (
            "alg none",
            lambda: {"token": jwt.encode({"sub": "u", "exp": 9_999_999_999}, "", algorithm="none")},
            "Token algorithm is not accepted",
        ),
        (
            "bad subject",
            lambda: {"token": keys.token(sub="has space")},
            "Token subject is not a valid user id",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_bad_tokens_are_refused_with_a_reason(
    refusing_edge: tuple[EdgeProcess, JsClientPool],
    case: str,
    make_auth: Callable[[], dict[str, Any] | None],
    message: str,
) -> None:
    edge, js = refusing_edge
    # Tokens are made now, not at collection: one minted then could expire meanwhile and
    # be refused for its expiry instead of the flaw under test.
    client = js.client(case.replace(" ", "-"))
    data = await connect_refused(client, edge.url, make_auth())
    assert data["message"] == message
    assert data["data"] == {"code": "UNAUTHENTICATED", "message": message}
    assert not client.events_named("connect")


async def test_expiry_leeway_admits_a_token_just_expired(jwt_edge: EdgeProcess, js: JsClientPool) -> None:
    # Expired 2 s ago, the leeway is 5 s: clocks that disagree a little still work.
    client = js.client("skewed")
    await client.connect(jwt_edge.url, auth={"token": keys.token(expires_in=-2)}, transports=["websocket"])
    assert client.connected and not client.events_named("connect_error")
    joined = await join(client, "user-1-id")
    assert joined["participant"]["userId"] == "user-1-id"


async def test_dev_mode_needs_no_token(edge: EdgeProcess, js: JsClientPool) -> None:
    client = js.client("dev")
    await client.connect(edge.url)
    reply = await join(client, "anyone", name="Anyone")
    assert reply["success"] is True


async def test_public_keys_from_jwks_file_and_pem(
    room_service: RoomServiceProcess, js: JsClientPool, tmp_path: Path
) -> None:
    rsa_key, ec_key, stranger = keys.rsa_key(), keys.ec_key(), keys.rsa_key()
    jwks_file = keys.jwks(tmp_path / "jwks.json", {"rsa-1": rsa_key, "ec-1": ec_key})
    pem_file = tmp_path / "ec.pub.pem"
    pem_file.write_bytes(keys.public_pem(ec_key))
    async with (
        await start_edge(
            room_service.grpc_address, *JWT_ARGS, "--jwt-jwks-file", str(jwks_file), name="jwks"
        ) as e1,
        await start_edge(
            room_service.grpc_address, *JWT_ARGS, "--jwt-public-key-file", str(pem_file), name="pem"
        ) as e2,
    ):
        ok_rs = keys.token("rs-user", key=rsa_key, algorithm="RS256", kid="rsa-1")
        ok_es = keys.token("es-user", key=ec_key, algorithm="ES256", kid="ec-1")
        await js.client("rs").connect(e1.url, auth={"token": ok_rs}, transports=["websocket"])
        await js.client("es").connect(e1.url, auth={"token": ok_es}, transports=["websocket"])
        await js.client("pem").connect(e2.url, auth={"token": ok_es}, transports=["websocket"])

        unknown_kid = keys.token("x", key=stranger, algorithm="RS256", kid="rsa-2")
        data = await connect_refused(js.client("kid"), e1.url, {"token": unknown_kid})
        assert data["data"]["code"] == "UNAUTHENTICATED"
        wrong_key = keys.token("x", key=stranger, algorithm="RS256", kid="rsa-1")
        data = await connect_refused(js.client("forged"), e1.url, {"token": wrong_key})
        assert data["message"] == "Token signature is invalid"
        # Algorithm confusion: an HS256 token "signed" with the public key as its secret.
        confused = keys.hs256_forged(
            {"sub": "x", "exp": 9_999_999_999, "iss": keys.ISSUER, "aud": keys.AUDIENCE},
            keys.public_pem(ec_key),
        )
        data = await connect_refused(js.client("confused"), e2.url, {"token": confused})
        assert data["message"] == "Token algorithm is not accepted"


async def test_jwt_mode_without_a_key_does_not_start(room_service: RoomServiceProcess) -> None:
    proc = ManagedProcess("edge-misconfigured", edge_argv(room_service.grpc_address, "--auth-mode", "jwt"))
    await proc.start()
    assert await proc.wait(20) == 2
    assert any("auth_mode=jwt needs exactly one of" in line.text for line in proc.lines)
