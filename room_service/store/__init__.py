"""Room state storage: a Protocol and its implementations."""
