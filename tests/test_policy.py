"""The policy pack (policy/rules.py) against resource inputs captured from the mocked program:
each rule passes on the committed stacks and reports a deliberately violating variant."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from harness import ROOT, evaluate, stack_file
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)

_spec = importlib.util.spec_from_file_location("policy_rules", ROOT / "policy" / "rules.py")
rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rules)
POLICY = {p.name: p for p in rules.POLICIES}


@dataclass
class Captured:
    type: str
    name: str
    props: dict[str, Any]
    secret_outputs: list[str]


def capture(stack: str) -> list[Captured]:
    config, secrets = stack_file(f"Pulumi.{stack}.yaml")
    evaluation = evaluate(config, secrets, stack=stack)
    return [Captured(r.type, r.name, r.plain,
                     list(evaluation.options[r.name].additional_secret_outputs or []))
            for r in evaluation.resources if r.name in evaluation.options]


def violations(policy_name: str, resources: list[Captured]) -> list[str]:
    policy = POLICY[policy_name]
    found: list[str] = []
    report: Callable[[str, str | None], None] = lambda message, urn=None: found.append(message)  # noqa: E731

    def options(r: Captured) -> PolicyResourceOptions:
        return PolicyResourceOptions(False, [], True, [], PolicyCustomTimeouts(0, 0, 0),
                                     r.secret_outputs)

    if isinstance(policy, StackValidationPolicy):
        policy.validate(StackValidationArgs([
            PolicyResource(r.type, r.props, f"urn:{r.name}", r.name, options(r), None, None, [], {})
            for r in resources]), report)
    else:
        for r in resources:
            policy.validate(ResourceValidationArgs(r.type, r.props, f"urn:{r.name}", r.name,
                                                   options(r), None), report)
    return found


@pytest.fixture(scope="module")
def captured() -> dict[str, list[Captured]]:
    return {stack: capture(stack) for stack in ("dev", "prod")}


def variant(resources: list[Captured], name_suffix: str, change: Callable[[Captured], None]
            ) -> list[Captured]:
    """A copy of the stack with `change` applied to the resources whose name ends so."""
    changed = copy.deepcopy(resources)
    hits = [r for r in changed if r.name.endswith(name_suffix)]
    assert hits, f"no resource named *{name_suffix}"
    for r in hits:
        change(r)
    return changed


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("policy", sorted(POLICY))
def test_committed_stacks_pass_every_rule(captured, stack, policy):
    assert violations(policy, captured[stack]) == []


def test_production_postgres_published_on_the_host_is_reported(captured):
    bad = variant(captured["prod"], "-postgres",
                  lambda r: r.props.setdefault("ports", []).append({"internal": 5432, "external": 5432}))
    assert violations("no-published-data-ports-in-production", bad) == [
        "prefect-prod-postgres publishes PostgreSQL (container port 5432) on the host in a "
        "production stack; reach it through the proxy or the Docker network instead"]


def test_dev_may_publish_the_prefect_api_on_localhost(captured):
    server = next(r for r in captured["dev"] if r.name.endswith("-prefect-server"))
    assert [p["internal"] for p in server.props["ports"]] == [4200]
    assert violations("no-published-data-ports-in-production", captured["dev"]) == []


@pytest.mark.parametrize("drop, expected", [
    ("healthcheck", "a health check"),
    ("memory", "a memory limit"),
    ("logOpts", "log rotation"),
    ("restart", "a restart policy"),
])
def test_long_running_container_without_an_operability_setting_is_reported(captured, drop, expected):
    bad = variant(captured["prod"], "-prefect-server", lambda r: r.props.pop(drop))
    found = violations("long-running-containers-are-operable", bad)
    assert len(found) == 1 and found[0].startswith("prefect-prod-prefect-server runs without")
    assert expected in found[0]


def test_one_shot_jobs_need_no_health_check(captured):
    job = next(r for r in captured["prod"] if r.name.endswith("-db-init"))
    assert job.props["mustRun"] is False and not job.props.get("healthcheck")
    assert violations("long-running-containers-are-operable", [job]) == []


@pytest.mark.parametrize("image", ["postgres", "postgres:latest", "postgres:16-alpine",
                                   "caddy:alpine"])
def test_unpinned_or_floating_image_is_reported(captured, image):
    bad = variant(captured["prod"], "postgres-16.6-alpine", lambda r: r.props.update(name=image))
    assert len(violations("images-are-pinned", bad)) == 1


def test_secret_env_not_kept_secret_is_reported(captured):
    bad = variant(captured["prod"], "-prefect-server", lambda r: r.secret_outputs.remove("envs"))
    found = violations("secret-looking-values-are-secret", bad)
    assert len(found) == 1
    assert "PREFECT_SERVER_API_AUTH_STRING" in found[0]
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" in found[0]


def test_uploaded_file_with_passwords_not_kept_secret_is_reported(captured):
    bad = variant(captured["prod"], "-db-init", lambda r: r.secret_outputs.remove("uploads"))
    assert violations("secret-looking-values-are-secret", bad) == [
        "prefect-prod-db-init uploads files holding credentials (/docker-init/init.sql) that are "
        "not kept secret"]


def test_public_proxy_with_prefect_auth_off_is_reported(captured):
    def without_auth(r: Captured) -> None:
        r.props["envs"] = [e for e in r.props["envs"]
                           if not e.startswith("PREFECT_SERVER_API_AUTH_STRING=")]

    bad = variant(captured["prod"], "-prefect-server", without_auth)
    found = violations("prefect-auth-when-proxy-is-public", bad)
    assert len(found) == 1 and "prefect-prod-proxy" in found[0]


def test_auth_may_be_off_when_nothing_is_published_beyond_the_host(captured):
    server = next(r for r in captured["dev"] if r.name.endswith("-prefect-server"))
    assert not any(e.startswith("PREFECT_SERVER_API_AUTH_STRING=") for e in server.props["envs"])
    assert violations("prefect-auth-when-proxy-is-public", captured["dev"]) == []


def test_every_rule_has_an_enforcement_level_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for policy in rules.POLICIES:
        assert f"`{policy.name}` | {policy.enforcement_level.value}" in readme, policy.name

