"""The edge runs with its young-generation threshold for Python's collector (fewer
collections, shorter pauses in the loop) and puts the interpreter's back when it stops."""

from __future__ import annotations

import gc

from tests.support.edge_stack import start_stack, stop_stack


async def test_the_edge_sets_the_collectors_threshold_while_it_runs() -> None:
    before = gc.get_threshold()
    stack = await start_stack()
    try:
        assert gc.get_threshold()[0] == stack.edge.settings.gc_young_threshold != before[0]
    finally:
        await stop_stack(stack)
    assert gc.get_threshold() == before
