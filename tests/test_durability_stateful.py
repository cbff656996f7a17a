"""Issue 12: the write path against a plain dict model, driven by Hypothesis
(see durability_machine.py); bounded for CI, `bench/durability_soak.py` runs it long."""

from __future__ import annotations

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from durability_machine import DurableWrites


def test_every_acknowledged_write_is_served_and_nothing_else(config, analysis):
    DurableWrites.analysis, DurableWrites.base_config = analysis, config
    run_state_machine_as_test(DurableWrites, settings=settings(
        max_examples=8, stateful_step_count=10, deadline=None))
