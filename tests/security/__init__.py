"""Security tests: authentication, secrets, limits, TLS and hostile input."""
