"""The seed's expected console lines (its section 9), as structured JSON records printed
by the real processes while the official client joins and disconnects."""

from __future__ import annotations

from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess

MEETING = "test-meeting-123"


def _msgs(proc: RoomServiceProcess | EdgeProcess) -> list[str]:
    return [str(record.get("msg", "")) for record in proc.records]


async def test_both_tiers_log_the_seeds_console_lines(
    room_service: RoomServiceProcess, edge: EdgeProcess, js: JsClientPool
) -> None:
    john, jane = js.client("john"), js.client("jane")
    await john.connect(edge.url)
    await john.emit("join-meeting", {"meetingId": MEETING, "userId": "user-123", "userName": "John Doe"})
    john_joined = (await john.wait_for_event("meeting-joined")).data
    await jane.connect(edge.url)
    await jane.emit("join-meeting", {"meetingId": MEETING, "userId": "user-456", "userName": "Jane Smith"})
    jane_joined = (await jane.wait_for_event("meeting-joined")).data
    await john.disconnect()
    await jane.wait_for_event("participant-left")
    await room_service.wait_for_log(lambda r: "Broadcast participant-left" in str(r.get("msg")))

    john_pid, jane_pid = john_joined["participantId"], jane_joined["participantId"]
    edge_lines, room_lines = _msgs(edge), _msgs(room_service)
    assert f"✅ Socket connected: {john.sid}" in edge_lines
    assert f"✅ Socket connected: {jane.sid}" in edge_lines
    assert f"✅ User John Doe (user-123) joined meeting {MEETING} as {john_pid}" in room_lines
    assert f"✅ User Jane Smith (user-456) joined meeting {MEETING} as {jane_pid}" in room_lines
    assert f"📤 Sent meeting-joined to {john.sid} with 0 existing participants" in edge_lines
    assert f"📤 Sent meeting-joined to {jane.sid} with 1 existing participant" in edge_lines
    assert "📤 Broadcast participant-joined to 1 other participant" in room_lines
    assert f"👋 User John Doe disconnected from meeting {MEETING}" in room_lines
    assert "📤 Broadcast participant-left to 1 remaining participant" in room_lines

    # Structured: the variable parts are fields too, for log pipelines.
    joined = next(
        r for r in room_service.records if r.get("participant_id") == jane_pid and "joined" in r["msg"]
    )
    assert joined["meeting_id"] == MEETING and joined["user_id"] == "user-456"
