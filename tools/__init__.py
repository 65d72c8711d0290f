"""Developer tools: the local launcher behind `make run`."""
