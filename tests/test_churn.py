"""Two evaluations in fresh processes register identical resources and inputs: nothing
(timestamps, random salts, set or dict order) would make `pulumi up` replace containers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness import ROOT

STACK_FILES = ["Pulumi.dev.yaml", "Pulumi.prod.yaml", "examples/003-traefik-many-services.yaml",
               "examples/kubernetes/prod.yaml"]
DUMP = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import evaluate, stack_file
runs = {{}}
for name in {stack_files!r}:
    config, secrets = stack_file(name)
    ev = evaluate(config, secrets, stack="churn")
    runs[name] = [[r.type, r.name, r.inputs] for r in ev.resources]
print(json.dumps(runs))
"""


@pytest.fixture(scope="module")
def two_fresh_runs() -> list[dict[str, list]]:
    """Each committed stack evaluated in two fresh processes (different hash seeds), started
    together: one process evaluates every stack file, so the interpreter and Pulumi start
    twice, not twice per stack."""
    code = DUMP.format(root=str(ROOT), tests=str(ROOT / "tests"), stack_files=STACK_FILES)
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env={"PYTHONHASHSEED": "random", "PATH": ""})
                 for _ in range(2)]
    runs = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        runs.append(json.loads(out))
    return runs


@pytest.mark.parametrize("stack_file", STACK_FILES)
def test_evaluating_twice_registers_the_same_resources_with_the_same_inputs(
        stack_file, two_fresh_runs):
    first, second = (run[stack_file] for run in two_fresh_runs)
    assert first, "the program registered nothing"
    # Key order inside protobuf maps varies with the hash seed; the engine compares values.
    canonical = [sorted(json.dumps(r, sort_keys=True) for r in run) for run in (first, second)]
    assert canonical[0] == canonical[1]
