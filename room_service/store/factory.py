"""Chooses the store implementation from settings."""

from __future__ import annotations

from room_service.store.base import RoomStore, StoreOptions
from room_service.store.memory import MemoryStore


def create_store(kind: str, options: StoreOptions) -> RoomStore:
    """The store named by `kind`; only "memory" exists today."""
    if kind == "memory":
        return MemoryStore(options)
    raise ValueError(f"unknown store {kind!r}")
