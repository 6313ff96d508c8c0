"""The bulk import's volume measures that are not visible in its results: the cyclic GC around a job."""

from __future__ import annotations

import gc

from registry.imports import jobs


def test_the_parsed_file_is_left_out_of_full_collections_only_while_the_job_runs() -> None:
    assert gc.get_freeze_count() == 0
    parsed = [[object()] for _ in range(1000)]  # stands for the parsed rows, alive for the whole job
    with jobs._parsed_file_frozen():
        assert gc.get_freeze_count() >= len(parsed)
    # Handed back: a cycle among them can be collected again once the job drops them.
    assert gc.get_freeze_count() == 0


def test_cycle_collection_is_off_only_inside_the_block_and_restored_as_it_was() -> None:
    assert gc.isenabled()
    with jobs._no_cycle_collection():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with jobs._no_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
