"""The GitHub Actions workflows, checked offline: GitHub's workflow schema (check-jsonschema),
actionlint, and the promises the README makes about them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import ROOT, check_jsonschema

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    return shutil.which(name) or str(BIN / name)


def load(name: str) -> dict:
    # PyYAML reads the `on:` key as True (YAML 1.1): look it up either way.
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps_using(workflow: dict, action: str) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]
            if step.get("uses", "").startswith(action)]


def test_both_workflows_exist():
    assert [w.name for w in WORKFLOWS] == ["deploy.yml", "preview.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(workflow):
    code, output = check_jsonschema("vendor.github-workflows", [workflow])
    assert code == 0, output


def test_actionlint_finds_nothing():
    result = subprocess.run([tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_the_readme_test_command_then_preview_both_stacks_with_policies():
    workflow = load("preview.yml")
    assert "pull_request" in workflow[True]
    test_steps = [s.get("run", "") for s in workflow["jobs"]["test"]["steps"]]
    assert any("./run-tests" in run for run in test_steps)
    readme = (ROOT / "README.md").read_text()
    assert "./run-tests" in readme
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == ["test", "test-non-root"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    (pulumi,) = steps_using(workflow, "pulumi/actions@")
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True
    assert "secrets.PULUMI_BACKEND_URL" in pulumi["with"]["cloud-url"]
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in preview["env"]["PULUMI_CONFIG_PASSPHRASE"]


def test_the_suite_runs_as_root_and_as_an_ordinary_user():
    """Live tests need root (namespaces); everything else must pass for any user."""
    jobs = load("preview.yml")["jobs"]
    (as_root,) = [s["run"] for s in jobs["test"]["steps"] if "./run-tests" in s.get("run", "")]
    assert as_root.startswith("sudo ")
    (as_user,) = [s["run"] for s in jobs["test-non-root"]["steps"]
                  if "./run-tests" in s.get("run", "")]
    assert "sudo" not in as_user and 'test "$(id -u)" -ne 0' in as_user


def test_main_deploys_dev_then_prod_behind_the_production_environment():
    workflow = load("deploy.yml")
    assert workflow[True]["push"]["branches"] == ["main"]
    dev, prod = workflow["jobs"]["dev"], workflow["jobs"]["prod"]
    assert prod["needs"] == "dev"
    assert prod["environment"] == "production"
    for job, stack in ((dev, "dev"), (prod, "prod")):
        (pulumi,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"] == stack


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_no_action_runs_on_a_deprecated_node20_major(workflow):
    """checkout v5, setup-python v6 and pulumi/actions v7 run on node24."""
    minimum = {"actions/checkout": 5, "actions/setup-python": 6, "pulumi/actions": 7}
    for step in [s for job in yaml.safe_load(workflow.read_text())["jobs"].values()
                 for s in job["steps"] if "uses" in s]:
        action, _, version = step["uses"].partition("@")
        assert action in minimum, f"unreviewed action {action}"
        assert int(version.lstrip("v")) >= minimum[action], step["uses"]
