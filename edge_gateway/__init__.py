"""Stateless edge gateway: Socket.IO events in, RoomService RPCs out, room events relayed back."""
