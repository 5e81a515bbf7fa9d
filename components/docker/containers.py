"""Turn one `ServiceSpec` into pulumi-docker containers: the only place that knows Docker.

Hygiene from the field notes, applied to every container: image passed by ID from a
RemoteImage (a tag would replace the container on every `up`), health-check edits replace
the container (Docker ignores in-place edits), fixed names delete before replace, explicit
log rotation, memory limit, no-new-privileges, and secret inputs kept secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.docker.images import BuiltImage
from components.docker.jobruns import job_gate, job_run
from components.spec import EnvValue, Mount, SecretText, ServiceSpec, replica_names

WAIT_TIMEOUT_SECONDS = 180


@dataclass
class DeployContext:
    """What every component needs to wire its containers (shared, created once)."""

    prefix: str
    production: bool
    stack_scope: str  # salts derived hashes, e.g. "prefect-stack/dev"
    images: Mapping[str, docker.RemoteImage | BuiltImage]
    networks: Mapping[str, docker.Network]
    volumes: Mapping[str, docker.Volume]
    secrets: Mapping[str, pulumi.Output[str]]
    log_driver: str
    log_opts: Mapping[str, str]
    deployed: dict[str, list[docker.Container]]  # service name -> its containers, as created
    finished_jobs: dict[str, pulumi.Output[str]]  # one-shot name -> its gate (see job_gate)
    docker_host: str | None = None  # docker.host, for the `docker logs` hint in job errors

    def resolve(self, value: str | SecretText) -> pulumi.Input[str]:
        """Plain text stays plain; a SecretText becomes a secret Output."""
        if isinstance(value, str):
            return value
        refs = {key: self.secrets[key] for key in value.keys}
        rendered = pulumi.Output.all(**refs).apply(
            lambda values: value.render(values, self.stack_scope))
        return pulumi.Output.secret(rendered)


def container_names(prefix: str, spec: ServiceSpec) -> list[str]:
    return replica_names(prefix, spec.name, spec.replicas)


def deploy_service(spec: ServiceSpec, ctx: DeployContext, parent: pulumi.Resource
                   ) -> list[docker.Container]:
    """Create the spec's containers (one per replica) under `parent`."""
    depends: list[pulumi.Resource] = []
    labels = [docker.ContainerLabelArgs(label="prefect-stack.stack", value=ctx.prefix),
              docker.ContainerLabelArgs(label="prefect-stack.service", value=spec.name),
              # read by the policy pack (policy/): production rules apply to these containers
              docker.ContainerLabelArgs(label="prefect-stack.production",
                                        value=str(ctx.production).lower())]
    for name in spec.depends_on:
        depends += ctx.deployed[name]
        if name in ctx.finished_jobs:
            labels.append(docker.ContainerLabelArgs(
                label=f"prefect-stack.after.{name}", value=ctx.finished_jobs[name]))
    containers = []
    for name in container_names(ctx.prefix, spec):
        command = list(spec.command) if spec.command else None
        entrypoint = None if spec.entrypoint is None else list(spec.entrypoint)
        if spec.one_shot:  # run again by the next `up` if this run fails (components/jobs.py)
            run, command = job_run(spec, name, parent)
            if entrypoint is not None:  # the wrapper becomes the entrypoint; it runs theirs
                wrapper_length = len(command) - len(spec.command or ())
                entrypoint, command = command[:wrapper_length], entrypoint + command[wrapper_length:]
        container = docker.Container(
            name,
            name=name,
            hostname=name,
            image=ctx.images[spec.image].image_id,
            command=command,
            entrypoints=entrypoint,
            envs=[_env_entry(key, value, ctx) for key, value in sorted(spec.env.items())],
            labels=labels,
            restart="no" if spec.one_shot else "unless-stopped",
            must_run=not spec.one_shot,
            attach=spec.one_shot,
            logs=spec.one_shot,
            wait=spec.wait_healthy,
            wait_timeout=WAIT_TIMEOUT_SECONDS if spec.wait_healthy else None,
            healthcheck=_healthcheck(spec),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(
                name=ctx.networks[net].name, aliases=[spec.name]) for net in spec.networks],
            ports=[docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.host_ip)
                   for p in spec.ports],
            mounts=[_mount(m, ctx) for m in spec.mounts],
            uploads=[docker.ContainerUploadArgs(file=u.path, content=ctx.resolve(u.content),
                                                executable=u.executable or None)
                     for u in spec.uploads],
            working_dir=spec.working_dir,
            user=spec.user,
            memory=spec.memory_mb,
            cpus=str(spec.cpus) if spec.cpus else None,
            security_opts=["no-new-privileges:true"],
            log_driver=ctx.log_driver,
            log_opts=dict(ctx.log_opts),
            destroy_grace_seconds=30,
            opts=pulumi.ResourceOptions(
                parent=parent,
                depends_on=depends,
                delete_before_replace=True,
                replace_on_changes=["healthcheck"],
                # a job's logs land in state as `containerLogs`: keep them secret too
                additional_secret_outputs=["envs", "uploads"] + (
                    ["containerLogs"] if spec.one_shot else []),
            ),
        )
        containers.append(container)
        if spec.one_shot:
            ctx.finished_jobs[spec.name] = job_gate(spec.name, name, run, container,
                                                    ctx.docker_host)
    ctx.deployed[spec.name] = containers
    return containers


def _env_entry(key: str, value: EnvValue, ctx: DeployContext) -> pulumi.Input[str]:
    if isinstance(value, str):
        return f"{key}={value}"
    return pulumi.Output.concat(f"{key}=", ctx.resolve(value))


def _healthcheck(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
    check = spec.healthcheck
    if check is None:
        return None
    return docker.ContainerHealthcheckArgs(
        tests=list(check.test), interval=f"{check.interval_s}s", timeout=f"{check.timeout_s}s",
        retries=check.retries, start_period=f"{check.start_period_s}s")


def _mount(mount: Mount, ctx: DeployContext) -> docker.ContainerMountArgs:
    if mount.volume is not None:
        return docker.ContainerMountArgs(target=mount.target, type="volume",
                                          source=ctx.volumes[mount.volume].name,
                                          read_only=mount.read_only)
    # `./flows` is relative to the project directory, where Pulumi runs the program.
    source = os.path.abspath(mount.host_path or "")
    return docker.ContainerMountArgs(target=mount.target, type="bind", source=source,
                                      read_only=mount.read_only)
