"""Pure domain: values (models), the room log's events, requests, errors and rules. No protobuf, no I/O."""
