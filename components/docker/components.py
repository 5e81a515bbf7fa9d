"""The stack's ComponentResources. Each groups the containers of one concern; the Prefect
knowledge is already in their specs, so these only wire and report outputs."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.docker.containers import DeployContext, container_names, deploy_service
from components.spec import NetworkSpec, SecretSpec, ServiceSpec, VolumeSpec

TOKEN = "prefect-stack:index:"


class ContainerGroup(pulumi.ComponentResource):
    """Containers for a list of specs, created in order under this component."""

    kind = "ContainerGroup"

    def __init__(self, name: str, specs: list[ServiceSpec], ctx: DeployContext,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + self.kind, name, None, opts)
        self.containers: dict[str, list[docker.Container]] = {
            spec.name: deploy_service(spec, ctx, parent=self) for spec in specs}
        self.container_names = pulumi.Output.from_input(
            [n for spec in specs for n in container_names(ctx.prefix, spec)])
        self.register_outputs({"containerNames": self.container_names, **self.extra_outputs()})

    def extra_outputs(self) -> dict[str, pulumi.Input[object]]:
        return {}


class Database(ContainerGroup):
    """PostgreSQL on the internal network plus the idempotent role/database init job."""

    kind = "Database"


class PrefectServer(ContainerGroup):
    kind = "PrefectServer"

    def __init__(self, name: str, specs: list[ServiceSpec], ctx: DeployContext,
                 internal_api_url: str, opts: pulumi.ResourceOptions | None = None):
        self.internal_api_url = pulumi.Output.from_input(internal_api_url)
        super().__init__(name, specs, ctx, opts)

    def extra_outputs(self) -> dict[str, pulumi.Input[object]]:
        return {"internalApiUrl": self.internal_api_url}


class WorkerPool(ContainerGroup):
    kind = "WorkerPool"

    def __init__(self, name: str, specs: list[ServiceSpec], ctx: DeployContext,
                 pool_name: str, opts: pulumi.ResourceOptions | None = None):
        self.pool_name = pulumi.Output.from_input(pool_name)
        super().__init__(name, specs, ctx, opts)

    def extra_outputs(self) -> dict[str, pulumi.Input[object]]:
        return {"poolName": self.pool_name}


class AppApi(ContainerGroup):
    kind = "AppApi"


class Redis(ContainerGroup):
    kind = "Redis"


class Service(ContainerGroup):
    kind = "Service"


class SetupJob(ContainerGroup):
    kind = "SetupJob"


class ReverseProxy(ContainerGroup):
    kind = "ReverseProxy"


class Monitoring(ContainerGroup):
    """The Prefect exporter, Prometheus and Grafana."""

    kind = "Monitoring"


class Backup(ContainerGroup):
    """Scheduled database dumps, their retention and the restore command."""

    kind = "Backup"


GROUPS: dict[str, type[ContainerGroup]] = {
    cls.kind: cls for cls in (Database, AppApi, Redis, Service, SetupJob, ReverseProxy,
                              Monitoring, Backup)}


class StackNetworks(pulumi.ComponentResource):
    """`app` for traffic between services; `data` is internal (no route out) for databases."""

    def __init__(self, name: str, prefix: str, specs: tuple[NetworkSpec, ...],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + "StackNetworks", name, None, opts)
        self.networks = {
            spec.name: docker.Network(
                f"{prefix}-{spec.name}", name=f"{prefix}-{spec.name}", driver="bridge",
                internal=spec.internal,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
            for spec in specs}
        self.register_outputs({"names": {k: n.name for k, n in self.networks.items()}})


class StackVolumes(pulumi.ComponentResource):
    """Named volumes; in production, data volumes survive `pulumi destroy`."""

    def __init__(self, name: str, prefix: str, specs: tuple[VolumeSpec, ...], production: bool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + "StackVolumes", name, None, opts)
        self.volumes = {
            spec.name: docker.Volume(
                f"{prefix}-{spec.name}", name=f"{prefix}-{spec.name}",
                opts=pulumi.ResourceOptions(parent=self,
                                            retain_on_delete=production and spec.holds_data))
            for spec in specs}
        self.register_outputs({"names": {k: v.name for k, v in self.volumes.items()}})


class StackSecrets(pulumi.ComponentResource):
    """Each secret from `pulumi config --secret`, or generated once and kept in state."""

    def __init__(self, name: str, specs: tuple[SecretSpec, ...], sources: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + "StackSecrets", name, None, opts)
        config = pulumi.Config()
        self.values: dict[str, pulumi.Output[str]] = {}
        for spec in specs:
            if sources[spec.key] == "config":
                self.values[spec.key] = config.require_secret(spec.key)
            else:
                # New keepers replace the RandomPassword: that is how a label in
                # secrets.rotation rotates it (absent until first rotated: no churn).
                generated = random.RandomPassword(
                    spec.key, length=32, special=False,
                    keepers={"rotation": spec.rotation} if spec.rotation else None,
                    opts=pulumi.ResourceOptions(parent=self))
                # Secret in real runs already; wrapped so mocks and real runs agree.
                self.values[spec.key] = pulumi.Output.secret(generated.result)
        self.register_outputs({"generated": sorted(k for k, s in sources.items()
                                                   if s == "generate")})
