"""Entry point of the Pulumi program (`main: infra/` in Pulumi.yaml).

Pulumi's Python host runs this file with `infra/` as the first entry of sys.path, so the repository
root, which holds the `components` and `infra` packages, is not importable by default (pitfall 11).
Put the root first and drop `infra/` itself so its modules are only ever imported as `infra.*`.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from infra.program import main  # noqa: E402

main()
