"""The root component for target.kind kubernetes: creates the objects `manifests` describes.

Only wiring: each manifest becomes its typed pulumi-kubernetes resource under a component
per concern (the same component types as on Docker), secrets become secret Outputs, `Ref`s
the generated names of Secrets and ConfigMaps, and `depends_on` the order in which Pulumi
waits (a Job until it completed, a Deployment until it is available).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import PROJECT
from components.docker.components import TOKEN, StackSecrets
from components.kubernetes.manifests import JOB_DEADLINE_SECONDS, Manifest, Ref, manifests
from components.loader import LoadedStack
from components.spec import SecretText

KINDS: dict[str, Any] = {
    "Namespace": k8s.core.v1.Namespace,
    "ServiceAccount": k8s.core.v1.ServiceAccount,
    "Secret": k8s.core.v1.Secret,
    "ConfigMap": k8s.core.v1.ConfigMap,
    "PersistentVolumeClaim": k8s.core.v1.PersistentVolumeClaim,
    "Service": k8s.core.v1.Service,
    "Deployment": k8s.apps.v1.Deployment,
    "StatefulSet": k8s.apps.v1.StatefulSet,
    "Job": k8s.batch.v1.Job,
    "PodDisruptionBudget": k8s.policy.v1.PodDisruptionBudget,
    "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
    "Ingress": k8s.networking.v1.Ingress,
}


class ObjectGroup(pulumi.ComponentResource):
    """The Kubernetes objects of one concern (a pool, the server, the database ...)."""

    def __init__(self, kind: str, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + kind, name, None, opts)
        self.objects: list[pulumi.CustomResource] = []

    def done(self, outputs: Mapping[str, pulumi.Input[Any]]) -> None:
        self.register_outputs({"objects": [o.urn for o in self.objects], **outputs})


class KubernetesStack(pulumi.ComponentResource):
    def __init__(self, name: str, loaded: LoadedStack, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + "PrefectStack", name, None, opts)
        cfg, plan = loaded.config, loaded.plan
        self.plan = plan
        settings = cfg.target.kubernetes
        provider = k8s.Provider("kubernetes", kubeconfig=settings.kubeconfig,
                                context=settings.context,
                                opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        secrets = StackSecrets("secrets", plan.secrets, loaded.secret_sources, opts=child)
        self.secrets = secrets.values
        self.stack_scope = f"{PROJECT}/{pulumi.get_stack()}"
        self.created: dict[str, pulumi.CustomResource] = {}
        self.groups: dict[tuple[str, str], ObjectGroup] = {}
        for manifest in manifests(plan, cfg):
            group = self._group(manifest, child)
            group.objects.append(self._create(manifest, group))
        for (kind, group_name), group in self.groups.items():
            extra: dict[str, Any] = {}
            if kind == "PrefectServer":
                extra["internalApiUrl"] = plan.internal_api_url
            if kind == "WorkerPool":
                extra["poolName"] = group_name
            group.done(extra)

        self.ui_url = pulumi.Output.from_input(plan.ui_url)
        self.api_url = pulumi.Output.from_input(plan.api_url)
        self.internal_api_url = pulumi.Output.from_input(plan.internal_api_url)
        self.work_pools = pulumi.Output.from_input(list(plan.work_pools))
        self.login = self._secret(plan.login) if plan.login is not None else None
        self.register_outputs({"uiUrl": self.ui_url, "apiUrl": self.api_url,
                               "internalApiUrl": self.internal_api_url,
                               "workPools": self.work_pools, "login": self.login})

    def _group(self, manifest: Manifest, opts: pulumi.ResourceOptions) -> ObjectGroup:
        key = (manifest.component, manifest.group)
        if key not in self.groups:
            name = f"pool-{manifest.group}" if manifest.component == "WorkerPool" else manifest.group
            self.groups[key] = ObjectGroup(manifest.component, name, opts=opts)
        return self.groups[key]

    def _create(self, manifest: Manifest, group: ObjectGroup) -> pulumi.CustomResource:
        body = {snake(k): self._resolve(v) for k, v in manifest.body.items()
                if k not in ("apiVersion", "kind")}
        secret_outputs = ["data", "stringData"] if manifest.kind == "Secret" else None
        # Pulumi waits 10 minutes for a Job by default; wait as long as the job may run.
        timeouts = (pulumi.CustomTimeouts(create=f"{JOB_DEADLINE_SECONDS}s",
                                          update=f"{JOB_DEADLINE_SECONDS}s")
                    if manifest.kind == "Job" else None)
        resource = KINDS[manifest.kind](manifest.key, **body, opts=pulumi.ResourceOptions(
            parent=group, depends_on=[self.created[k] for k in manifest.depends_on],
            retain_on_delete=manifest.retain or None,
            additional_secret_outputs=secret_outputs, custom_timeouts=timeouts))
        self.created[manifest.key] = resource
        return resource

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, SecretText):
            return self._secret(value)
        if isinstance(value, Ref):
            return self.created[value.key].metadata.name  # type: ignore[attr-defined]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    def _secret(self, text: SecretText) -> pulumi.Output[str]:
        refs = {key: self.secrets[key] for key in text.keys}
        rendered = pulumi.Output.all(**refs).apply(
            lambda values: text.render(values, self.stack_scope))
        return pulumi.Output.secret(rendered)


def snake(name: str) -> str:
    """`stringData` -> `string_data`: top-level fields are Python keyword arguments."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
