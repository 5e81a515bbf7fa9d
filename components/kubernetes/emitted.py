"""The Kubernetes objects a mocked evaluation registered, as the API server would receive
them: secrets unwrapped (callers redact or use them), generated names filled in, numbers as
JSON integers. Read by the tests (schema validation, checkov, invariants) and the live
harness (which runs the pods)."""

from __future__ import annotations

from typing import Any

from components.dryrun import Evaluation, kubernetes_auto_name, unwrap


def integral(value: Any) -> Any:
    """The engine's wire format has only floats; Kubernetes' schemas want integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def kubernetes_objects(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """Pulumi resource name -> the object (apiVersion, kind, metadata, ...)."""
    out = {}
    for r in evaluation.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith("pulumi:providers:"):
            continue
        body = integral(unwrap(r.inputs))
        metadata = body.setdefault("metadata", {})
        metadata.setdefault("name", kubernetes_auto_name(r.name))
        out[r.name] = body
    return out
