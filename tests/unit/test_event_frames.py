"""An emit framed straight from its JSON (engine._json_array, frames.event_frame) is the
frame upstream's packet encoding and the codec give, byte for byte, at every frame-length
form; what orjson refuses is left to upstream's encoding."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from edge_gateway.engine import EdgePacket, _json_array, _message
from edge_gateway.frames import OrjsonCodec, engineio_frame, event_frame


class _Packet(EdgePacket):
    json = OrjsonCodec  # as EdgeSocketServer configures its packets


def _upstream(items: list[Any]) -> bytes:
    encoded = _Packet(sio_packet.EVENT, namespace="/", data=items).encode()
    return engineio_frame(eio_packet.Packet(eio_packet.MESSAGE, encoded))


@pytest.mark.parametrize("size", [0, 100, 200, 70_000])  # 7-bit, 16-bit and 64-bit lengths
def test_the_frame_is_upstreams(size: int) -> None:
    roster = orjson.Fragment(orjson.dumps([{"userName": "Zoë 名前 " + "x" * size}]))
    items = ["meeting-joined", {"success": True, "participants": roster}, "epoch:7"]
    body = _json_array(items)
    assert body is not None
    assert event_frame(body) == _upstream(items)
    # A polling socket's packet says the same.
    assert _message(body).encode() == "4" + _Packet(sio_packet.EVENT, data=items).encode()


@pytest.mark.parametrize("data", [{"blob": b"\x00"}, {"big": 1 << 70}, {1: "non-text key"}])
def test_what_orjson_refuses_goes_upstreams_way(data: dict[Any, Any]) -> None:
    assert _json_array(["event", data]) is None
