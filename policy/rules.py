"""The policy pack's rules: what security review would otherwise check by hand.

Each rule reads resource inputs as the engine hands them to the pack (property names as
the Docker provider spells them). Production rules key off the `prefect-stack.production`
label the program puts on every container. Enforcement levels are set per rule below and
listed in the README.

During `pulumi preview` some inputs are unknown (generated passwords, image IDs, the job-gate
labels built from exit codes): pulumi-policy hands them over as sentinels and raises
UnknownValueError when a rule reads one, which turns the verdict into "can't run policy during
preview". So each rule reads only the properties it judges, and list entries it cannot know
yet are skipped (`_known`): `pulumi up` runs every rule again with all values known.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from components.images import is_floating_major, is_pinned  # the config checks use the same rule
from policy.kubernetes_rules import KUBERNETES_POLICIES

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DATA_PORTS = {5432: "PostgreSQL", 6379: "Redis", 4200: "the Prefect API"}
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|API_KEY|PRIVATE_KEY", re.IGNORECASE)
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@", re.IGNORECASE)
SECRET_FILE_TEXT = re.compile(CREDENTIAL_URL.pattern + r"|PASSWORD\s+'|requirepass\s", re.IGNORECASE)


def _known(props: Mapping[str, Any], key: str) -> tuple[list[Any], bool]:
    """The entries of list property `key` known now, and whether any is not (preview)."""
    try:
        items = props.get(key) or []
    except UnknownValueError:
        return [], True
    known: list[Any] = []
    for i in range(len(items)):
        try:
            known.append(items[i])
        except UnknownValueError:
            continue
    return known, len(known) < len(items)


def _label(props: Mapping[str, Any], name: str) -> str | None:
    """One label's value, reading no other label (a job gate's value is unknown in preview)."""
    for item in _known(props, "labels")[0]:
        if item["label"] == name:
            try:
                return item["value"]
            except UnknownValueError:
                return None
    return None


def _is_production(props: Mapping[str, Any]) -> bool:
    return _label(props, "prefect-stack.production") == "true"


def _long_running(props: Mapping[str, Any]) -> bool:
    return props.get("mustRun") is not False


def _env(props: Mapping[str, Any]) -> tuple[dict[str, str], bool]:
    """The known environment entries, and whether some are unknown yet (built from secrets)."""
    entries, unknown = _known(props, "envs")
    return dict(entry.split("=", 1) for entry in entries), unknown


def _text(item: Mapping[str, Any], key: str) -> str:
    try:
        return item.get(key) or ""
    except UnknownValueError:
        return ""


def _is_public(port: Mapping[str, Any]) -> bool:
    ip = port.get("ip") or "0.0.0.0"
    return not (ip.startswith("127.") or ip == "::1")


def no_published_data_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CONTAINER or not _is_production(args.props):
        return
    for port in _known(args.props, "ports")[0]:
        internal = int(port["internal"])
        if internal in DATA_PORTS:
            report(f"{args.name} publishes {DATA_PORTS[internal]} (container port {internal}) on "
                   f"the host in a production stack; reach it through the proxy or the Docker "
                   f"network instead", None)


def long_running_containers_are_operable(args: ResourceValidationArgs,
                                         report: ReportViolation) -> None:
    if args.resource_type != CONTAINER or not _long_running(args.props):
        return
    props = args.props
    missing = []
    if not props.get("healthcheck"):
        missing.append("a health check")
    if props.get("restart") not in RESTART_POLICIES:
        missing.append(f"a restart policy ({', '.join(sorted(RESTART_POLICIES))})")
    if not props.get("memory"):
        missing.append("a memory limit")
    if props.get("logDriver") != "local" and not (props.get("logOpts") or {}).get("max-size"):
        missing.append("log rotation (logOpts max-size)")
    if missing:
        report(f"{args.name} runs without {', '.join(missing)}", None)


def images_are_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REMOTE_IMAGE:
        return
    image = args.props.get("name") or ""
    if not is_pinned(image):
        report(f"image {image!r} has no tag or uses `latest`: pin a version", None)
    elif is_floating_major(image):
        report(f"image {image!r} uses a floating tag: pin major.minor at least", None)


def secret_looking_values_are_secret(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The Python policy SDK hands the pack secret inputs already unwrapped, so the check is on
    what keeps them secret in state and outputs: `additional_secret_outputs`."""
    if args.resource_type != CONTAINER:
        return
    kept_secret = set(args.opts.additional_secret_outputs or [])
    if args.props.get("logs") and "containerLogs" not in kept_secret:
        report(f"{args.name} stores its output in state (`logs: true`) without keeping "
               f"`containerLogs` secret: a job that prints a password would leave it in clear",
               None)
    if "envs" not in kept_secret:
        suspicious = sorted(key for key, value in _env(args.props)[0].items()
                            if SECRET_NAME.search(key) or CREDENTIAL_URL.search(value))
        if suspicious:
            report(f"{args.name} has secret-looking environment variables "
                   f"({', '.join(suspicious)}) that are not kept secret", None)
    if "uploads" in kept_secret:
        return
    files = sorted(upload["file"] for upload in _known(args.props, "uploads")[0]
                   if SECRET_FILE_TEXT.search(_text(upload, "content")))
    if files:
        report(f"{args.name} uploads files holding credentials ({', '.join(files)}) that are not "
               f"kept secret", None)


def prefect_auth_when_proxy_is_public(args: StackValidationArgs, report: ReportViolation) -> None:
    containers = [r for r in args.resources if r.resource_type == CONTAINER]
    public = [r.name for r in containers if any(_is_public(p) for p in _known(r.props, "ports")[0])]
    if not public:
        return
    for server in containers:
        command = " ".join(server.props.get("command") or [])
        # `prefect server start`, also behind prefect-stack's guard (`python guard.py run ...`)
        env, unknown = _env(server.props)
        # An entry unknown in preview may be the auth string: `pulumi up` decides that one.
        if (command.startswith("prefect server start") or " run prefect server start" in command) and \
                "PREFECT_SERVER_API_AUTH_STRING" not in env and not unknown:
            report(f"{server.name} serves the Prefect API without auth while "
                   f"{', '.join(public)} publishes ports beyond this host: set server.basicAuth",
                   server.urn)


POLICIES = [
    ResourceValidationPolicy(
        name="no-published-data-ports-in-production",
        description="Production containers do not publish PostgreSQL, Redis or Prefect API ports.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=no_published_data_ports),
    ResourceValidationPolicy(
        name="long-running-containers-are-operable",
        description="Long-running containers have a health check, restart policy, memory limit "
                    "and log rotation.",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=long_running_containers_are_operable),
    ResourceValidationPolicy(
        name="images-are-pinned",
        description="No image is untagged, `latest` or on a floating major tag.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=images_are_pinned),
    ResourceValidationPolicy(
        name="secret-looking-values-are-secret",
        description="Passwords, tokens, auth strings and credential URLs are kept secret.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=secret_looking_values_are_secret),
    StackValidationPolicy(
        name="prefect-auth-when-proxy-is-public",
        description="Prefect's own auth is on when any port is published beyond the host.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=prefect_auth_when_proxy_is_public),
    *KUBERNETES_POLICIES,  # target.kind kubernetes (policy/kubernetes_rules.py)
]
