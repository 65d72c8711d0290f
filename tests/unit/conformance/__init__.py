"""The store conformance suite: the RoomStore contract, one module per role, every test run
against the memory store, a real redis-server and a Redis Cluster this session starts on
free ports (`new_store`, tests/unit/conftest.py)."""
