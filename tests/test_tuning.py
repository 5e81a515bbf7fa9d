"""Latency and memory settings (components/tuning.py), as the program plans them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from harness import planned
from live.gate import require_live_prefect

POOL = {"workers": [{"name": "etl"}]}


def pool_script(config) -> str:
    return planned(config).service("pool-etl").command[-1]


def test_pool_job_makes_the_fork_client_the_default_flow_run_command():
    script = pool_script(POOL)
    pipe, create = script.split(" | ", 1)
    assert "'python /opt/prefect-stack/prefect_flow_run.py'" in pipe
    assert create.startswith("prefect work-pool create etl --type process --overwrite "
                             "--base-job-template /dev/stdin")


def test_null_flow_run_command_leaves_prefects_generated_command():
    script = pool_script({"workers": [{"name": "etl", "flowRunCommand": None}]})
    assert "--base-job-template" not in script and " | " not in script


@pytest.mark.live
def test_the_emitted_template_is_prefects_own_with_only_the_command_default_set(tmp_path):
    """Run the emitted pipe with the image's Prefect: the template must be Prefect's default
    for process pools, except the command's default."""
    pipe = pool_script({"workers": [{"name": "etl", "flowRunCommand": "python -X utf8 -m "
                                     "prefect.engine"}]}).split(" | ", 1)[0]
    env = {"PATH": f"{require_live_prefect().parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "PREFECT_HOME": str(tmp_path)}

    def run(script: str) -> dict:
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    emitted = run(pipe)
    default = run("prefect work-pool get-default-base-job-template --type process")
    command = emitted["variables"]["properties"].pop("command")
    assert command["default"] == "python -X utf8 -m prefect.engine"
    assert default["variables"]["properties"].pop("command")["default"] is None
    assert emitted == default
