"""How the offline plan drives Pulumi's runtime: the collector pause and the settling of outputs.

Neither may change what a plan shows (test_contract's determinism test compares whole plans); these
check that each leaves the process as it found it and never hides or waits out a failure.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pulumi.runtime import settings as pulumi_settings

import infra.offline.plan
from infra.config.errors import ConfigError
from infra.offline.plan import decode, run_program
from tests.conftest import make_config


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_engine_maps_decode_with_sorted_keys() -> None:
    decoded = decode({"zone": 1, "alpha": {"y": 2, "b": [{"d": 3, "c": 4}]}})
    assert list(decoded) == ["alpha", "zone"]
    assert list(decoded["alpha"]) == ["b", "y"]
    assert list(decoded["alpha"]["b"][0]) == ["c", "d"]


def test_the_collector_is_paused_while_the_program_runs_and_enabled_after(
        monkeypatch: pytest.MonkeyPatch, collector_state: None) -> None:
    seen: list[bool] = []
    real = infra.offline.plan._run_main

    def spy() -> Any:
        seen.append(gc.isenabled())
        return real()

    monkeypatch.setattr(infra.offline.plan, "_run_main", spy)
    gc.enable()
    plan = run_program("dev-aws", make_config("aws", environment="dev"))
    assert plan.resources
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_is_enabled_again_after_a_configuration_error(collector_state: None) -> None:
    gc.enable()
    with pytest.raises(ConfigError):
        run_program("dev-aws", make_config("aws", environment="dev", cluster_value={"nodePools": "none"}))
    assert gc.isenabled()


def test_a_caller_that_paused_the_collector_keeps_it_paused(collector_state: None) -> None:
    gc.disable()
    with pytest.raises(ConfigError):
        run_program("dev-aws", make_config("aws", environment="dev", cluster_value={"nodePools": "none"}))
    assert not gc.isenabled()


def _settle_with(tasks: Sequence[asyncio.Future[Any]], later: Sequence[asyncio.Future[Any]] = ()) -> None:
    """Run `_settle` over `tasks` as the runtime's tracked outputs; `later` join while it waits."""
    outputs = pulumi_settings.SETTINGS.outputs
    outputs.update(tasks)
    try:
        loop = asyncio.get_event_loop()
        if later:
            loop.call_soon(outputs.update, later)
        loop.run_until_complete(asyncio.wait_for(infra.offline.plan._settle(), timeout=5))
    finally:
        outputs.difference_update([*tasks, *later])


def test_settling_waits_for_every_output_including_those_created_meanwhile() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        async def value(delay: float) -> float:
            await asyncio.sleep(delay)
            return delay

        first = [loop.create_task(value(0.01 * i)) for i in range(20)]
        later = [loop.create_task(value(0.3))]
        _settle_with(first, later)
        assert all(t.done() for t in first + later)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_settling_returns_at_the_first_failure_for_the_runtime_to_report() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        async def fail() -> None:
            raise RuntimeError("boom")

        async def fail_later() -> None:
            await asyncio.sleep(0.05)
            raise RuntimeError("boom")

        for make in (fail, fail_later):  # failed before the settling starts, or while it waits
            never: asyncio.Future[Any] = loop.create_future()  # an output a failure left unresolved
            failing = loop.create_task(make())
            if make is fail:
                loop.run_until_complete(asyncio.sleep(0))
                assert failing.done()
            _settle_with([never, failing])  # returns (well within its 5 s timeout), never waits forever
            assert isinstance(failing.exception(), RuntimeError)  # retrieved: the runtime would report it
            assert not never.done()
            never.cancel()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
