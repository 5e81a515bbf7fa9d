"""Two evaluations in processes with different hash seeds register identical resources and
inputs: nothing (timestamps, random salts, set or dict order) would make `pulumi up` replace
containers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness import ROOT, registrations

# Each committed stack file, and the stack name other test modules evaluate it under (their
# cached evaluations serve this process's side).
STACKS = {"Pulumi.dev.yaml": "test", "Pulumi.prod.yaml": "test",
          "examples/003-traefik-many-services.yaml": "test",
          "examples/kubernetes/prod.yaml": "example"}  # test_kubernetes's
# The fresh process imports the test helpers only, not pytest.
FRESH_PROCESS = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import registrations
print(json.dumps(registrations({stacks!r})))
"""


@pytest.fixture(scope="module")
def two_runs() -> list[dict[str, list]]:
    """Each committed stack evaluated in this process and in a fresh one with its own random
    hash seed (set and dict order differ between the two). The fresh process starts first, so
    it runs while this one evaluates: one interpreter start, not two per stack."""
    code = FRESH_PROCESS.format(root=str(ROOT), tests=str(ROOT / "tests"), stacks=STACKS)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={"PYTHONHASHSEED": "random", "PATH": ""})
    here = registrations(STACKS)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-2000:]
    return [here, json.loads(out)]


@pytest.mark.parametrize("stack_file", STACKS)
def test_evaluating_twice_registers_the_same_resources_with_the_same_inputs(
        stack_file, two_runs):
    first, second = (run[stack_file] for run in two_runs)
    assert first, "the program registered nothing"
    # Key order inside protobuf maps varies with the hash seed; the engine compares values.
    canonical = [sorted(json.dumps(r, sort_keys=True) for r in run) for run in (first, second)]
    assert canonical[0] == canonical[1]
