"""Policy rules for the Kubernetes backend (target.kind kubernetes): the same concerns as the
Docker rules (operable workloads, hardened processes, secrets kept out of plain inputs,
pinned images), read from pulumi-kubernetes inputs as the engine hands them to the pack.

Values unknown during preview (generated Secret names) are skipped: `pulumi up` runs every
rule again with all values known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from components.images import is_floating_major, is_pinned

WORKLOADS = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
             "kubernetes:batch/v1:Job"}
LONG_RUNNING = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|API_KEY|PRIVATE_KEY", re.IGNORECASE)
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@", re.IGNORECASE)


def _get(value: Any, *path: str) -> Any:
    """value[path...], or None when absent or unknown during preview."""
    try:
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value
    except UnknownValueError:
        return None


def _pod(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return _get(props, "spec", "template", "spec") or {}


def _containers(props: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    pod = _pod(props)
    for key in ("initContainers", "containers"):
        yield from _get(pod, key) or []


def workloads_are_operable(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in LONG_RUNNING:
        return
    for container in _containers(args.props):
        missing = [what for what, present in (
            ("a liveness probe", _get(container, "livenessProbe")),
            ("a readiness probe", _get(container, "readinessProbe")),
            ("a memory limit", _get(container, "resources", "limits", "memory")),
            ("a CPU request", _get(container, "resources", "requests", "cpu"))) if not present]
        if missing:
            report(f"{args.name} runs container {_get(container, 'name')} without "
                   f"{', '.join(missing)}", None)


def pods_are_hardened(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """prefect-helm's defaults: no privilege escalation, all capabilities dropped, seccomp
    RuntimeDefault, no service-account token, nothing from the host."""
    if args.resource_type not in WORKLOADS:
        return
    pod = _pod(args.props)
    problems = []
    if _get(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault":
        problems.append("seccomp profile is not RuntimeDefault")
    if _get(pod, "automountServiceAccountToken") is not False:
        problems.append("the service-account token is mounted")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if _get(pod, flag):
            problems.append(f"{flag} is on")
    for volume in _get(pod, "volumes") or []:
        if _get(volume, "hostPath") is not None:
            problems.append(f"volume {_get(volume, 'name')} is a hostPath")
    for container in _containers(args.props):
        name = _get(container, "name")
        security = _get(container, "securityContext") or {}
        if _get(security, "allowPrivilegeEscalation") is not False:
            problems.append(f"{name} may escalate privileges")
        if _get(security, "privileged"):
            problems.append(f"{name} is privileged")
        if "ALL" not in (_get(security, "capabilities", "drop") or []):
            problems.append(f"{name} keeps Linux capabilities (drop ALL)")
        if _get(container, "ports") and any(_get(p, "hostPort") for p in container["ports"]):
            problems.append(f"{name} binds a host port")
    if problems:
        report(f"{args.name}: {'; '.join(problems)}", None)


def secrets_are_referenced(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A secret-looking env var comes from a Secret (valueFrom), never as a plain value in the
    pod template, where `kubectl get deployment -o yaml` shows it to anyone who may read it."""
    if args.resource_type not in WORKLOADS:
        return
    plain = []
    for container in _containers(args.props):
        for entry in _get(container, "env") or []:
            value = _get(entry, "value")
            if value is None:
                continue
            name = str(_get(entry, "name"))
            if SECRET_NAME.search(name) or CREDENTIAL_URL.search(str(value)):
                plain.append(name)
    if plain:
        report(f"{args.name} sets secret-looking environment variables as plain values "
               f"({', '.join(sorted(plain))}); reference a Secret (valueFrom.secretKeyRef)", None)


def images_are_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in WORKLOADS:
        return
    for container in _containers(args.props):
        image = _get(container, "image") or ""
        if not is_pinned(image):
            report(f"{args.name}: image {image!r} has no tag or uses `latest`: pin a version", None)
        elif is_floating_major(image):
            report(f"{args.name}: image {image!r} uses a floating tag: pin major.minor at least",
                   None)


KUBERNETES_POLICIES = [
    ResourceValidationPolicy(
        name="kubernetes-workloads-are-operable",
        description="Deployments and StatefulSets have liveness and readiness probes, a memory "
                    "limit and a CPU request on every container.",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=workloads_are_operable),
    ResourceValidationPolicy(
        name="kubernetes-pods-are-hardened",
        description="Pods run with prefect-helm's security defaults and nothing from the host.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=pods_are_hardened),
    ResourceValidationPolicy(
        name="kubernetes-secrets-are-referenced",
        description="Secret-looking env vars come from Secrets, not plain pod-template values.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=secrets_are_referenced),
    ResourceValidationPolicy(
        name="kubernetes-images-are-pinned",
        description="No workload image is untagged, `latest` or on a floating major tag.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=images_are_pinned),
]
