"""The session's plan memo (tests/plans.py) keys a plan on the stack files beside it by name and
content, not by their folder's path. That holds only while a plan does not depend on where its
folder is: planned fresh in two folders, the same pair gives the same plan."""

from __future__ import annotations

from pathlib import Path

from infra.offline import plan as offline
from tests.test_dr import write_pair


def test_a_pair_plans_the_same_in_any_folder(tmp_path: Path) -> None:
    plans = []
    for name in ("one", "elsewhere/two"):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        primary, _ = write_pair(folder, "where-aws", "where-gcp", ("aws", "gcp"))
        offline._REFERENCE_CACHE.clear()  # the per-process cache of referenced plans is keyed by path too
        plans.append(offline.plan_stack(config_file=primary))  # the real run_program: no memo in between
    first, second = plans
    assert first.resources and first.of_type("pulumi:pulumi:StackReference"), "the pair reads its peer"
    assert str(tmp_path) not in repr(vars(first)) + repr(vars(second))
    assert vars(first) == vars(second)
