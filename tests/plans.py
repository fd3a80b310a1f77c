"""Plans shared by the whole test session: each distinct configuration is planned once.

Planning runs the real program under the mock runtime (0.3-1 s a plan, more for the first plan of
a cloud, which imports its SDK). Most tests only read a plan, and many read the same one, so:

    from tests.conftest import spec_plan, stack_plan

    stack_plan("prod-aws")                      # stacks/Pulumi.prod-aws.yaml
    spec_plan("gcp")                            # the shared test spec (conftest.CLUSTER), prod-gcp
    spec_plan("aws", environment="dev", extra={"im-platform:services": SERVICES})

`spec_plan` takes exactly the arguments of `conftest.plan_config`; both end in one memo keyed on
what the program receives (stack name, config map, secret keys, and the stack files it may read
for references), so two spellings of the same configuration share one plan. The processes of one
session (pytest-xdist's workers) share the memo through a folder conftest creates: whichever
process asks for a plan first computes it, the others read it. Every call returns a private copy: a test may change what it gets
without touching what the next test sees. `run_program_once` has the signature of
`infra.offline.plan.run_program`; the `shared_plans` fixture installs it so in-process CLI commands (`plan`,
`check`, `manifests`) reuse the session's plans too.

Use `conftest.plan_config` (a fresh plan) only where planning itself is under test: determinism,
spies on what the program calls.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.config import stackfiles
from infra.offline.plan import Plan, project_name, read_stack_config, run_program, stack_file

_Key = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], str, tuple[str, ...], bool, tuple[tuple[int, str, str], ...]]
_MEMO: dict[_Key, bytes] = {}
# A folder the test session's processes (pytest-xdist workers) share plans through: set by conftest.
SHARED_ENV = "IM_PLATFORM_TEST_PLANS"


def _stack_files() -> tuple[tuple[int, str, str], ...]:
    """Where referenced stacks are looked up, and what each stack file there holds: a plan reads them.

    Keyed by each folder's place in the search order and the files' names and contents, not by the
    folders' paths: a plan does not depend on where its folder is (tests/test_plans.py holds that),
    so the same pair written into two tests' temporary folders is planned once."""
    found = []
    for index, folder in enumerate(stackfiles.search_dirs()):
        for path in sorted(folder.glob("Pulumi.*.y*ml")):
            found.append((index, path.name, hashlib.sha256(path.read_bytes()).hexdigest()))
    return tuple(found)


def _shared(key: _Key, compute: Callable[[], bytes]) -> bytes:
    """`compute()`, done once by whichever process of the session asks first: the others wait on a
    lock and read its pickle. Without the shared folder (a plain `python -c`), just `compute()`."""
    folder = os.environ.get(SHARED_ENV)
    if not folder or not os.path.isdir(folder):
        return compute()
    path = Path(folder) / (hashlib.sha256(repr(key).encode()).hexdigest() + ".pickle")
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path.read_bytes()
        data = compute()
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, path)
        return data


_FROZEN_AT = [0]  # len(sys.modules) at the last freeze


def freeze_what_is_loaded() -> None:
    """Once enough modules were imported since the last time (a cloud's SDK, in its first plan),
    collect, then move everything alive out of the cyclic collector's sight (`gc.freeze`): the
    modules stay for the session, and the collector's full passes, which kept walking the SDKs'
    thousands of modules and types between tests, stop doing so (about 5% of the suite's CPU)."""
    import gc
    import sys

    if len(sys.modules) - _FROZEN_AT[0] > 200:
        gc.collect()
        gc.freeze()
        _FROZEN_AT[0] = len(sys.modules)


def run_program_once(stack: str, config: dict[str, str], *, secret_keys: list[str] | None = None,
                     project: str | None = None, _chain: tuple[str, ...] = (), _shallow: bool = False) -> Plan:
    """`infra.offline.plan.run_program`, memoized for the session; returns a copy the caller owns.

    A configuration error is raised every time (nothing is cached for it)."""
    project = project or project_name()
    # Referenced stacks are read from the folders searched (beside the planned file first, then
    # stacks/): which files are there, and what they hold, is part of the key.
    key: _Key = (stack, tuple(sorted(config.items())), tuple(secret_keys or ()), project, _chain, _shallow,
                 _stack_files())
    if key not in _MEMO:
        # Kept pickled: unpickling is a cheap deep copy (well under a millisecond per plan).
        _MEMO[key] = _shared(key, lambda: pickle.dumps(
            run_program(stack, dict(config), secret_keys=list(secret_keys or []), project=project, _chain=_chain,
                        _shallow=_shallow), pickle.HIGHEST_PROTOCOL))
    freeze_what_is_loaded()
    plan: Plan = pickle.loads(_MEMO[key])
    return plan


def stack_plan(name: str) -> Plan:
    """stacks/Pulumi.<name>.yaml planned once per session, exactly as `plan --stack NAME` plans it."""
    project = project_name()
    config, secret_keys = read_stack_config(stack_file(name), project)  # what plan_stack(name) runs
    return run_program_once(name, config, secret_keys=secret_keys, project=project)


def spec_plan(cloud: str, stack: str | None = None, **kwargs: Any) -> Plan:
    """`conftest.plan_config(cloud, stack, **kwargs)`, planned once per session."""
    from tests.conftest import make_config

    environment = kwargs.get("environment", "prod")
    return run_program_once(stack or f"{environment}-{cloud}", make_config(cloud, **kwargs))


@contextmanager
def sharing_plans() -> Iterator[None]:
    """Within the block, everything that plans through infra.offline.plan (plan_stack, the CLI commands) shares
    the session's plans. The `shared_plans` fixture is the same for one test."""
    import infra.offline.plan

    real = infra.offline.plan.run_program
    infra.offline.plan.run_program = run_program_once
    try:
        yield
    finally:
        infra.offline.plan.run_program = real
