"""Shared test support: the socket.io-client (JavaScript) driver and process helpers."""
