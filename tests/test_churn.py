"""Two evaluations in fresh processes register identical resources and inputs: nothing
(timestamps, random salts, set or dict order) would make `pulumi up` replace containers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness import ROOT

DUMP = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import evaluate, stack_file
config, secrets = stack_file({stack_file!r})
ev = evaluate(config, secrets, stack="churn")
print(json.dumps([[r.type, r.name, r.inputs] for r in ev.resources]))
"""


def registered(stack_file: str) -> list:
    code = DUMP.format(root=str(ROOT), tests=str(ROOT / "tests"), stack_file=stack_file)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={"PYTHONHASHSEED": "random", "PATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("stack_file", ["Pulumi.dev.yaml", "Pulumi.prod.yaml",
                                        "examples/003-traefik-many-services.yaml"])
def test_evaluating_twice_registers_the_same_resources_with_the_same_inputs(stack_file):
    first, second = registered(stack_file), registered(stack_file)
    assert first, "the program registered nothing"
    # Key order inside protobuf maps varies with the hash seed; the engine compares values.
    canonical = [sorted(json.dumps(r, sort_keys=True) for r in run) for run in (first, second)]
    assert canonical[0] == canonical[1]
