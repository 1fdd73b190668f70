"""`import fusiondx` makes torch's OpenMP threads wait passively (docs/scaling.md), before torch
is loaded, and keeps a policy the user set."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = (
    "import os, sys; import fusiondx; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
)


def _run(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_passive_unless_set_and_before_torch_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policy, torch_loaded = _run(env)
    # `import fusiondx` itself does not load torch, so libgomp has not read the variable yet.
    assert policy == "PASSIVE" and torch_loaded == "False"
    assert _run({**env, "OMP_WAIT_POLICY": "ACTIVE"})[0] == "ACTIVE"
