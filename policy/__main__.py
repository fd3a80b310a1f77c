"""Entry point of the policy pack: `pulumi preview --policy-pack policy`.

Pulumi runs this file from policy/ with policy/ first on sys.path. The rules live in the
repository's `infra` package, so put the repository root first and drop policy/ itself, so that
this package's modules are only ever imported as `policy.*` (as infra/__main__.py does).
Constructing PolicyPack starts the analyzer's gRPC server and blocks: never import this file.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import PACK_NAME, policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
