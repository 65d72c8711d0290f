"""Pure domain: models, errors and rules. No protobuf, no I/O."""
