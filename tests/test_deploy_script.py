"""`./deploy` sets up a local backend and the dev passphrase, then runs pulumi.

The Pulumi CLI cannot be installed here, so a stand-in `pulumi` records how it is called."""

from __future__ import annotations

import os
import subprocess

import pytest
from harness import ROOT

FAKE_PULUMI = """#!/usr/bin/env bash
echo "args=$* backend=$PULUMI_BACKEND_URL passphrase=${PULUMI_CONFIG_PASSPHRASE-<unset>}" >> "$FAKE_LOG"
"""


@pytest.fixture
def fake_pulumi(tmp_path):
    (tmp_path / "pulumi").write_text(FAKE_PULUMI)
    (tmp_path / "pulumi").chmod(0o755)
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PATH=f"{tmp_path}:{env['PATH']}", FAKE_LOG=str(log))
    return env, log


def run(env, *args):
    return subprocess.run([str(ROOT / "deploy"), *args], env=env, capture_output=True,
                          text=True, timeout=30)


def test_dev_up_creates_the_stack_on_a_local_backend_with_the_dev_passphrase(fake_pulumi):
    env, log = fake_pulumi
    result = run(env, "dev")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    backend = f"file://{ROOT}/.pulumi-state"
    assert calls == [
        f"args=install backend={backend} passphrase=prefect-stack-dev",
        f"args=stack select --create --secrets-provider passphrase dev backend={backend} "
        "passphrase=prefect-stack-dev",
        f"args=up --stack dev backend={backend} passphrase=prefect-stack-dev",
    ]


def test_prod_refuses_to_run_without_a_passphrase(fake_pulumi):
    env, log = fake_pulumi
    result = run(env, "prod", "preview")
    assert result.returncode == 2
    assert "PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert not log.exists()


def test_prod_passes_the_command_through_with_the_callers_passphrase(fake_pulumi):
    env, log = fake_pulumi
    env["PULUMI_CONFIG_PASSPHRASE"] = "from-the-vault"
    result = run(env, "prod", "preview", "--diff")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-1].startswith(
        "args=preview --diff --stack prod backend=file://")


def test_unknown_stack_prints_usage(fake_pulumi):
    env, _ = fake_pulumi
    result = run(env, "staging")
    assert result.returncode == 2 and "stacks: dev prod" in result.stderr
