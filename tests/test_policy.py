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
from pulumi.output import Unknown
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

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


def capture(stack: str, preview: bool = False, secrets: dict[str, str] | None = None
            ) -> list[Captured]:
    """What the engine hands the pack; with `preview`, as `pulumi preview` of a fresh stack
    (values built from generated passwords, image IDs or exit codes are unknown). An `up`
    is the session's cached evaluation, which other test files judge too."""
    config, committed = stack_file(f"Pulumi.{stack}.yaml")
    evaluation = evaluate(config, committed if secrets is None else secrets, stack=stack,
                          **({"preview": True} if preview else {}))
    return [Captured(r.type, r.name, as_the_pack_sees(r.plain),
                     list(evaluation.options[r.name].additional_secret_outputs or []))
            for r in evaluation.resources if r.name in evaluation.options]


def as_the_pack_sees(value: Any) -> Any:
    """Unknown values as the engine sends them to a policy pack: a sentinel string."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: as_the_pack_sees(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_the_pack_sees(v) for v in value]
    return value


def violations(policy_name: str, resources: list[Captured]) -> list[str]:
    """Run one rule as pulumi-policy does: props behind its unknown-checking proxy, which
    raises UnknownValueError (no verdict, "can't run policy during preview") on a read of an
    unknown value."""
    policy = POLICY[policy_name]
    found: list[str] = []
    report: Callable[[str, str | None], None] = lambda message, urn=None: found.append(message)  # noqa: E731

    def options(r: Captured) -> PolicyResourceOptions:
        return PolicyResourceOptions(False, [], True, [], PolicyCustomTimeouts(0, 0, 0),
                                     r.secret_outputs)

    if isinstance(policy, StackValidationPolicy):
        policy.validate(StackValidationArgs([
            PolicyResource(r.type, unknown_checking_proxy(r.props), f"urn:{r.name}", r.name,
                           options(r), None, None, [], {})
            for r in resources]), report)
    else:
        for r in resources:
            policy.validate(ResourceValidationArgs(r.type, unknown_checking_proxy(r.props),
                                                   f"urn:{r.name}", r.name, options(r), None),
                            report)
    return found


@pytest.fixture(scope="module")
def captured() -> dict[str, list[Captured]]:
    return {stack: capture(stack) for stack in ("dev", "prod")}


@pytest.fixture(scope="module")
def previewed() -> dict[str, list[Captured]]:
    return {stack: capture(stack, preview=True) for stack in ("dev", "prod")}


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


def test_job_logs_not_kept_secret_are_reported(captured):
    bad = variant(captured["prod"], "-db-init", lambda r: r.secret_outputs.remove("containerLogs"))
    found = violations("secret-looking-values-are-secret", bad)
    assert len(found) == 1 and found[0].startswith("prefect-prod-db-init stores its output")


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



# --- during `pulumi preview`: unknown values, still a verdict --------------------------------

def unknown_paths(value: Any, path: str = "") -> list[str]:
    if value == UNKNOWN_STRING_VALUE:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return []


def test_a_fresh_preview_hands_the_pack_unknown_passwords_gates_and_image_ids(previewed):
    server = next(r for r in previewed["prod"] if r.name == "prefect-prod-prefect-server")
    unknown = unknown_paths(server.props)
    assert ".image" in unknown
    assert any(p.startswith(".envs[") for p in unknown)  # built from generated passwords
    gate = next(i for i, label in enumerate(server.props["labels"])
                if label["label"] == "prefect-stack.after.db-init")
    assert f".labels[{gate}].value" in unknown


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("policy", sorted(POLICY))
def test_every_rule_gives_a_verdict_during_a_fresh_preview(previewed, stack, policy):
    assert violations(policy, previewed[stack]) == []  # UnknownValueError would fail here


def test_production_port_rule_reports_during_preview_despite_unknown_gate_labels(previewed):
    bad = variant(previewed["prod"], "-prefect-server",
                  lambda r: r.props.setdefault("ports", []).append({"internal": 4200, "external": 4200}))
    assert violations("no-published-data-ports-in-production", bad) == [
        "prefect-prod-prefect-server publishes the Prefect API (container port 4200) on the host "
        "in a production stack; reach it through the proxy or the Docker network instead"]


def test_secret_rule_reports_known_secrets_during_preview_and_skips_unknown_ones():
    configured = capture("prod", preview=True, secrets={
        key: f"configured-{key}" for key in
        ("basicAuthPassword", "postgresPassword", "prefectDbPassword", "appDbPassword")})
    bad = variant(configured, "-prefect-server", lambda r: r.secret_outputs.remove("envs"))
    found = violations("secret-looking-values-are-secret", bad)
    assert len(found) == 1 and "PREFECT_SERVER_API_AUTH_STRING" in found[0]


def test_auth_rule_waits_for_up_when_the_servers_env_is_unknown_in_preview(previewed):
    def public_without_known_auth(r: Captured) -> None:
        r.props["envs"] = [e for e in r.props["envs"]
                           if not str(e).startswith("PREFECT_SERVER_API_AUTH_STRING=")]

    undecided = variant(previewed["prod"], "-prefect-server", public_without_known_auth)
    assert violations("prefect-auth-when-proxy-is-public", undecided) == []

    def known_env_without_auth(r: Captured) -> None:
        r.props["envs"] = [e for e in r.props["envs"] if e != UNKNOWN_STRING_VALUE]

    decided = variant(previewed["prod"], "-prefect-server", known_env_without_auth)
    assert len(violations("prefect-auth-when-proxy-is-public", decided)) == 1
