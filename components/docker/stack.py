"""The root component: deploys a validated `StackPlan` onto one Docker host."""

from __future__ import annotations

import re
from itertools import groupby

import pulumi
import pulumi_docker as docker

from components.config import PROJECT
from components.docker.components import (
    GROUPS,
    TOKEN,
    ContainerGroup,
    PrefectServer,
    StackNetworks,
    StackSecrets,
    StackVolumes,
    WorkerPool,
)
from components.docker.containers import DeployContext
from components.docker.images import stack_images
from components.loader import LoadedStack
from components.spec import ServiceSpec, StackPlan


class PrefectStack(pulumi.ComponentResource):
    def __init__(self, name: str, loaded: LoadedStack, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN + "PrefectStack", name, None, opts)
        cfg, plan = loaded.config, loaded.plan
        self.plan = plan  # what was deployed, as plain data (python -m components.render)
        child = pulumi.ResourceOptions(parent=self)
        if cfg.docker.host is not None:
            provider = docker.Provider("docker", host=cfg.docker.host, opts=child)
            child = pulumi.ResourceOptions(parent=self, providers={"docker": provider})

        secrets = StackSecrets("secrets", plan.secrets, loaded.secret_sources, opts=child)
        networks = StackNetworks("networks", plan.prefix, plan.networks, opts=child)
        volumes = StackVolumes("volumes", plan.prefix, plan.volumes, plan.production, opts=child)
        images = stack_images(plan, image_resource_name, child)
        ctx = DeployContext(
            prefix=plan.prefix, production=plan.production,
            stack_scope=f"{PROJECT}/{pulumi.get_stack()}", images=images,
            networks=networks.networks, volumes=volumes.volumes, secrets=secrets.values,
            log_driver=cfg.logging.driver,
            log_opts={"max-size": cfg.logging.max_size, "max-file": str(cfg.logging.max_file)},
            deployed={}, finished_jobs={}, docker_host=cfg.docker.host)

        self.groups: dict[str, ContainerGroup] = {}
        for (kind, group), specs in groupby(plan.services, key=lambda s: (s.component, s.group)):
            self.groups[group] = self._component(kind, group, list(specs), ctx, plan, child)

        self.ui_url = pulumi.Output.from_input(plan.ui_url)
        self.api_url = pulumi.Output.from_input(plan.api_url)
        self.internal_api_url = pulumi.Output.from_input(plan.internal_api_url)
        self.work_pools = pulumi.Output.from_input(list(plan.work_pools))
        self.login = ctx.resolve(plan.login) if plan.login is not None else None
        self.register_outputs({"uiUrl": self.ui_url, "apiUrl": self.api_url,
                               "internalApiUrl": self.internal_api_url,
                               "workPools": self.work_pools, "login": self.login})

    @staticmethod
    def _component(kind: str, group: str, specs: list[ServiceSpec], ctx: DeployContext,
                   plan: StackPlan, opts: pulumi.ResourceOptions) -> ContainerGroup:
        if kind == "PrefectServer":
            return PrefectServer(group, specs, ctx, plan.internal_api_url, opts=opts)
        if kind == "WorkerPool":
            return WorkerPool(f"pool-{group}", specs, ctx, group, opts=opts)
        return GROUPS[kind](group, specs, ctx, opts=opts)


def image_resource_name(image: str) -> str:
    """`prefecthq/prefect:3.8.8-python3.12` -> `image-prefecthq-prefect-3.8.8-python3.12`."""
    return "image-" + re.sub(r"[^a-z0-9.]+", "-", image.lower()).strip("-")
