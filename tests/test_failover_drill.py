"""Failover drills through the real program (tests/drill.py): a failover and a failback of every
pair in stacks/ and of pairs on every cloud combination, each state planned and checked.

After promote and after route the pair has two primaries: each plan and check there says so in
exactly one warning naming both stacks; after demote there is none. A failover and its failback
leave the files byte for byte as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.config import yamlio
from infra.failover.command import find_pair
from infra.failover.orchestrator import failover
from infra.offline.plan import STACKS_DIR, traffic_stacks
from tests.drill import DrillFailed, PlanningControl
from tests.fake_cloud import EKS, CloudRefused, FakeCloud
from tests.test_traffic_pairs import write_pair

STEPS_DONE = ["done"] * 5


def _clouds_drilled_in_stacks() -> list[frozenset[str]]:
    """The cloud combinations the pairs in stacks/ already cover (each drilled both ways below)."""
    covered = []
    for traffic in traffic_stacks():
        doc = yamlio.safe_load((STACKS_DIR / f"Pulumi.{traffic}.yaml").read_text(encoding="utf-8"))
        clouds = set()
        for name in doc["config"]["im-platform:traffic"]["stacks"]:
            peer = yamlio.safe_load((STACKS_DIR / f"Pulumi.{name}.yaml").read_text(encoding="utf-8"))
            clouds.add(str(peer["config"]["im-platform:cloud"]))
        covered.append(frozenset(clouds))
    return covered


# Every pair of clouds, each cloud once the first primary, but for the combinations a pair in
# stacks/ covers: a failover and its failback drill both directions, so the example pair
# (aws + azure) stands for azure -> aws.
COMBINATIONS = [c for c in [("aws", "gcp"), ("gcp", "azure"), ("azure", "aws")]
                if frozenset(c) not in _clouds_drilled_in_stacks()]


def drill(stacks_dir: Path, target: str, journal: Path, cloud: FakeCloud | None = None) -> PlanningControl:
    """One failover to `target` through the planning Control; every step done and every state planned
    (and, with a fake cloud, every pool update accepted by its cloud's rule)."""
    pair = find_pair(target, stacks_dir)
    source = pair.active
    control = PlanningControl(pair.traffic_stack, stacks_dir, cloud)
    report = failover(target, control=control, journal=journal, sleep=lambda _s: None, pair=pair.stacks,
                      health_timeout_s=1)
    failed = [run for run in control.runs if run.code]
    assert report.ok, (report.failed_step, [s.error for s in report.steps], failed)
    assert [s.status for s in report.steps] == STEPS_DONE
    assert report.serving == target
    both = sorted((source, target))
    expected = {f"promote {target} to primary": [target, source, pair.traffic_stack],
                f"route {pair.traffic_stack} to {target}": [pair.traffic_stack],
                f"demote {source} to standby": [source, target, pair.traffic_stack]}
    seen: dict[str, list[str]] = {}
    for run in control.runs:
        if run.command == "plan":
            seen.setdefault(run.why, []).append(run.stack)
        assert run.code == 0, run
        if run.why.startswith("demote"):
            assert run.warnings == (), run
        else:
            # Between promote and demote: two primaries, said once, naming both.
            assert len(run.warnings) == 1, run
            assert f"im-platform:dr.role is primary on both {both[0]} and {both[1]}" in run.warnings[0], run
    assert seen == expected
    assert {run.command for run in control.runs} == {"plan", "check"}
    return control


def deployed(stacks_dir: Path, stacks: tuple[str, ...]) -> FakeCloud:
    """A fake cloud holding the pair's pools as a first `up` of each stack left them, then idle."""
    cloud = FakeCloud()
    seed = PlanningControl("none", stacks_dir)
    for stack in stacks:
        cloud.up(stack, seed.planned_resources(stack))
    cloud.idle()
    return cloud


def failover_and_back(stacks_dir: Path, traffic: str, journal: Path) -> FakeCloud:
    files = sorted(stacks_dir.glob("Pulumi.*.yaml"))
    before = {path: path.read_bytes() for path in files}
    pair = find_pair(first_of_pair(stacks_dir, traffic), stacks_dir)
    source = pair.active
    target = next(s for s in pair.stacks if s != source)
    cloud = deployed(stacks_dir, pair.stacks)
    drill(stacks_dir, target, journal, cloud)
    assert find_pair(target, stacks_dir).active == target
    changed = {path.name for path in files if path.read_bytes() != before[path]}
    assert changed == {f"Pulumi.{s}.yaml" for s in (*pair.stacks, traffic)}
    drill(stacks_dir, source, journal, cloud)
    assert {path: path.read_bytes() for path in files} == before, "a failback restores every file"
    # Each stack's pools were updated by its cloud through the promotion and the demotion.
    assert {stack for stack, *_ in cloud.accepted} == set(pair.stacks)
    return cloud


def first_of_pair(stacks_dir: Path, traffic: str) -> str:
    doc = yamlio.safe_load((stacks_dir / f"Pulumi.{traffic}.yaml").read_text(encoding="utf-8"))
    return str(doc["config"]["im-platform:traffic"]["stacks"][0])


@pytest.mark.parametrize("traffic", traffic_stacks())
def test_every_pair_in_stacks_fails_over_and_back_through_plannable_states(tmp_path: Path, traffic: str) -> None:
    stacks_dir = tmp_path / "repo" / "stacks"
    stacks_dir.mkdir(parents=True)
    # Read from the traffic stack's own file: stacks/ may hold more than one pair (or a copy).
    doc = yamlio.safe_load((STACKS_DIR / f"Pulumi.{traffic}.yaml").read_text(encoding="utf-8"))
    for name in (*doc["config"]["im-platform:traffic"]["stacks"], traffic):
        shutil.copy(STACKS_DIR / f"Pulumi.{name}.yaml", stacks_dir)
    cloud = failover_and_back(stacks_dir, traffic, tmp_path / "journal.json")
    if any(urn.split("::")[-2].endswith(EKS) for urn in cloud.pools):
        # Failing back to EKS raised a node group's count with its minimum (the seam this guards).
        assert any(low is not None and low == count and low > 0 for stack, urn, low, count in cloud.accepted
                   if urn.split("::")[-2].endswith(EKS) and stack == "prod-aws")


@pytest.mark.parametrize(("first", "second"), COMBINATIONS, ids=["-".join(p) for p in COMBINATIONS])
def test_a_pair_on_each_cloud_combination_fails_over_and_back(tmp_path: Path, first: str, second: str) -> None:
    path, _, _ = write_pair(tmp_path, first, second)
    failover_and_back(tmp_path, path.name.removeprefix("Pulumi.").removesuffix(".yaml"), tmp_path / "journal.json")


def test_the_drill_fails_a_state_the_rules_refuse(tmp_path: Path) -> None:
    """Demoting before promoting leaves two standbys: the drill's plan refuses it, naming role."""
    path, a, b = write_pair(tmp_path, "aws", "gcp")
    control = PlanningControl(path.name.removeprefix("Pulumi.").removesuffix(".yaml"), tmp_path)
    with pytest.raises(DrillFailed, match=r"after demote .*: plan .* exits 2: config error: im-platform:dr.role"):
        control.demote(a)


def test_the_fake_cloud_refuses_a_promotion_that_does_not_raise_the_count(tmp_path: Path) -> None:
    """Without the state edit, failing back to EKS sends the idle count with the primary's minimum."""
    path, a, b = write_pair(tmp_path, "aws", "gcp")
    cloud = deployed(tmp_path, (a, b))
    control = PlanningControl(path.name.removeprefix("Pulumi.").removesuffix(".yaml"), tmp_path, cloud)
    control.promote(b)
    control.demote(a)
    control.raise_counts = lambda name: None  # type: ignore[method-assign]
    with pytest.raises(CloudRefused, match="Minimum capacity .* can't be greater than desired size"):
        control.promote(a)
