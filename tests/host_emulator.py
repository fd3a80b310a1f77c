"""Run the program the way Pulumi's Python host does, with the mock runtime instead of an engine.

The host runs `runpy.run_path(<main dir>)` with only that directory and site-packages on
sys.path. This script imports nothing of the project, so the program must make its own imports
work (pitfall 11). Prints the number of resources registered.
"""

import asyncio
import importlib.util
import json
import runpy
import sys

from pulumi.runtime import mocks, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack


class Echo(mocks.Mocks):
    def new_resource(self, args):  # noqa: ANN001, ANN201
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):  # noqa: ANN001, ANN201
        return {"names": ["z1", "z2", "z3"], "partition": "aws", "number": "1", "tenantId": "t"}


def main() -> None:
    program, stack, config_json = sys.argv[1], sys.argv[2], sys.argv[3]
    # ./setup.sh installs the project editable for its console script, whose import finder makes
    # the packages importable from anywhere; a user who installed requirements.txt alone has no such
    # finder, so the program must not need it.
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    if importlib.util.find_spec("components") is not None:
        raise SystemExit("the repository root is importable before the program runs: the emulation proves nothing")
    monitor = mocks.MockMonitor(Echo())
    set_all_config(json.loads(config_json))
    features = set(monitor.GetDeploymentInfo(None).supportedFeatures)
    settings.configure(mocks.MockSettings(monitor=monitor, monitor_features=features, engine=mocks.MockEngine(None),
                                          project="im-platform", stack=stack, dry_run=True, organization=None,
                                          callbacks=None))
    settings.ROOT.set(None)
    asyncio.new_event_loop().run_until_complete(run_in_stack(lambda: runpy.run_path(program, run_name="__main__")))
    print(len(monitor.resources))


if __name__ == "__main__":
    main()
