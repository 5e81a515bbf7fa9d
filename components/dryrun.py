"""Run the real program on Pulumi's mock engine and read back the containers it emits.

No Docker daemon and no Pulumi CLI: the SDK's mock monitor stands in for the engine, so
what we read is exactly what `pulumi up` would send to the Docker provider. Used by
`python -m components.render`, the unit tests and the live tests (which start the emitted
containers as real processes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components.config import PROJECT

SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()  # resource names from depends_on and input Outputs

    @property
    def plain(self) -> dict[str, Any]:
        return unwrap(self.inputs)


@dataclass
class Evaluation:
    resources: list[Registered] = field(default_factory=list)
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)  # by resource name
    component_outputs: dict[str, Any] = field(default_factory=dict)
    stack: Any = None

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def containers(self) -> dict[str, dict[str, Any]]:
        """Container name -> plain inputs."""
        return {r.name: r.plain for r in self.of_type(CONTAINER)}

    def container(self, name: str) -> dict[str, Any]:
        return self.containers()[name]

    def raw_container(self, name: str) -> dict[str, Any]:
        return next(r.inputs for r in self.of_type(CONTAINER) if r.name == name)

    def env(self, name: str) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.container(name).get("envs", []))


def image_id(resource_name: str) -> str:
    return "sha256:" + hashlib.sha256(resource_name.encode()).hexdigest()


class RecordingMocks(pulumi.runtime.Mocks):
    """Plausible provider outputs; generated passwords come from `password_for(key)`."""

    def __init__(self, evaluation: Evaluation, password_for: Callable[[str], str]):
        self.evaluation = evaluation
        self.password_for = password_for

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = unwrap(dict(args.inputs))
        if args.typ == RANDOM_PASSWORD:
            outputs["result"] = self.password_for(args.name)
        if args.typ == REMOTE_IMAGE:
            outputs["imageId"] = image_id(args.name)
        if args.typ == CONTAINER and outputs.get("mustRun") is False:
            outputs["exitCode"] = 0
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Records every registration as the engine receives it: inputs (secrets still
    wrapped), dependencies, and component outputs."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.evaluation = mocks.evaluation

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            depends = tuple(urn.rsplit("::", 1)[-1] for urn in request.dependencies)
            self.evaluation.resources.append(
                Registered(request.type, request.name, inputs, depends))
        return super().RegisterResource(request)

    def RegisterResourceOutputs(self, request):  # noqa: N802 (gRPC method name)
        outputs = rpc.deserialize_properties(request.outputs)
        self.evaluation.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


def evaluate(config: Mapping[str, Any], secrets: Mapping[str, str] | None = None,
             stack: str = "test", plain: Mapping[str, str] | None = None,
             password_for: Callable[[str], str] | None = None,
             into: Evaluation | None = None) -> Evaluation:
    """Run the program with `prefect-stack:*` config (objects as values) on mocks.

    `secrets` are set as secret config keys; `plain` as plaintext keys. Generated passwords
    are `password_for(config key)`. Raises pulumi.RunError exactly as `pulumi up` reports it.
    """
    from components.program import run

    evaluation = into if into is not None else Evaluation()
    mocks = RecordingMocks(evaluation, password_for or generated_password)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             monitor=RecordingMonitor(mocks))
    values = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v)
              for k, v in config.items()}
    values.update({f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()})
    values.update({f"{PROJECT}:{k}": v for k, v in (plain or {}).items()})
    pulumi.runtime.set_all_config(values, secret_keys=[f"{PROJECT}:{k}" for k in secrets or {}])

    @pulumi.runtime.test
    def program():
        evaluation.stack = run()
        return evaluation.stack.ui_url

    original_init = pulumi.CustomResource.__init__

    def recording_init(self, t, name, props=None, opts=None, *args, **kwargs):
        evaluation.options[name] = opts or pulumi.ResourceOptions()
        original_init(self, t, name, props, opts, *args, **kwargs)

    pulumi.CustomResource.__init__ = recording_init  # type: ignore[method-assign]
    try:
        program()
    finally:
        pulumi.CustomResource.__init__ = original_init  # type: ignore[method-assign]
    return evaluation


def generated_password(key: str) -> str:
    return "gen-" + hashlib.sha256(key.encode()).hexdigest()[:24]


class PulumiYamlLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads stack files (YAML 1.2): only true/false are booleans,
    so `yes`, `on` and `off` stay strings, as they reach the program under `pulumi up`."""


PulumiYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
PulumiYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A stack file's `prefect-stack:*` config, and the keys that hold `secure:` values."""
    data = yaml.load(path.read_text(), Loader=PulumiYamlLoader) or {}
    config: dict[str, Any] = {}
    secure: list[str] = []
    for key, value in (data.get("config") or {}).items():
        if not key.startswith(f"{PROJECT}:"):
            continue
        short = key.split(":", 1)[1]
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.append(short)
        else:
            config[short] = value
    return config, secure


# --- the emitted containers, as plain data -------------------------------------------------

@dataclass(frozen=True)
class EmittedMount:
    target: str
    kind: str  # volume | bind
    source: str  # Docker volume name or host path
    read_only: bool


@dataclass(frozen=True)
class EmittedContainer:
    """One docker.Container as registered, secrets unwrapped (callers redact or use them)."""

    name: str
    aliases: tuple[str, ...]
    image: str  # the image reference the RemoteImage pulls
    command: tuple[str, ...] | None
    env: dict[str, str]
    uploads: dict[str, str]  # path in the container -> content
    healthcheck: tuple[str, ...] | None
    networks: dict[str, tuple[str, ...]]  # Docker network name -> aliases
    mounts: tuple[EmittedMount, ...]
    ports: tuple[tuple[str, int, int], ...]  # (host ip, host port, container port)
    user: str | None
    working_dir: str | None
    one_shot: bool
    wait_healthy: bool
    depends_on: tuple[str, ...]  # other containers it waits for, sorted


def emitted_containers(evaluation: Evaluation) -> list[EmittedContainer]:
    """The containers in an order Pulumi could create them (dependencies first)."""
    images = {image_id(r.name): r.plain["name"] for r in evaluation.of_type(REMOTE_IMAGE)}
    networks = {r.name: r.plain["name"] for r in evaluation.of_type("docker:index/network:Network")}
    container_names = {r.name for r in evaluation.of_type(CONTAINER)}
    found = []
    for r in evaluation.of_type(CONTAINER):
        plain = r.plain
        found.append(EmittedContainer(
            name=r.name,
            aliases=tuple(dict.fromkeys(a for n in plain.get("networksAdvanced") or []
                                        for a in n.get("aliases") or [])),
            image=images.get(plain["image"], plain["image"]),
            command=tuple(plain["command"]) if plain.get("command") else None,
            env=dict(e.split("=", 1) for e in plain.get("envs") or []),
            uploads={u["file"]: u["content"] for u in plain.get("uploads") or []},
            healthcheck=tuple((plain.get("healthcheck") or {}).get("tests") or ()) or None,
            networks={networks.get(n["name"], n["name"]): tuple(n.get("aliases") or ())
                      for n in plain.get("networksAdvanced") or []},
            mounts=tuple(EmittedMount(m["target"], m["type"], m["source"], bool(m.get("readOnly")))
                         for m in plain.get("mounts") or []),
            ports=tuple((p.get("ip", "0.0.0.0"), int(p["external"]), int(p["internal"]))
                        for p in plain.get("ports") or []),
            user=plain.get("user"),
            working_dir=plain.get("workingDir"),
            one_shot=plain.get("mustRun") is False,
            wait_healthy=bool(plain.get("wait")),
            depends_on=tuple(sorted(d for d in set(r.dependencies) if d in container_names)),
        ))
    return creation_order(found)


def creation_order(containers: list[EmittedContainer]) -> list[EmittedContainer]:
    """Dependencies first, otherwise by name. Registration order is no guide: the SDK registers
    a resource when its inputs resolve, which varies from run to run."""
    pending = {c.name: c for c in containers}
    ordered: list[EmittedContainer] = []
    while pending:
        ready = sorted(name for name, c in pending.items()
                       if not any(d in pending for d in c.depends_on))
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(pending)}")
        ordered += [pending.pop(name) for name in ready[:1]]
    return ordered


# --- secret wrappers, as the engine sees them ----------------------------------------------

def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE


def unwrap(value: Any) -> Any:
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def plain_strings(value: Any) -> list[str]:
    """Every string reachable without passing through a secret wrapper."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *plain_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in plain_strings(v)]
    return [value] if isinstance(value, str) else []
