"""The authoritative RoomService: meetings, rooms, participants and ordered room events."""
