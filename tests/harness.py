"""Evaluate the real Pulumi program on mocks and record what it registers.

No Docker daemon, no Pulumi CLI, no network: the Pulumi SDK's mock monitor stands in for the
engine. Inputs are recorded as the engine would receive them, secrets still wrapped, so the
tests can tell a secret input from a plain one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig
CONTAINER = "docker:index/container:Container"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def generated_password(name: str) -> str:
    return "gen-" + hashlib.sha256(name.encode()).hexdigest()[:24]


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str = ""

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


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.evaluation.resources.append(Registered(args.typ, args.name, args.inputs))
        outputs = unwrap(dict(args.inputs))
        if args.typ == RANDOM_PASSWORD:
            outputs["result"] = generated_password(args.name)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = "sha256:" + hashlib.sha256(args.name.encode()).hexdigest()
        if args.typ == CONTAINER and outputs.get("mustRun") is False:
            outputs["exitCode"] = 0
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.evaluation = mocks.evaluation

    def RegisterResourceOutputs(self, request):  # noqa: N802 (gRPC method name)
        outputs = rpc.deserialize_properties(request.outputs)
        self.evaluation.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


def evaluate(config: dict[str, Any], secrets: dict[str, str] | None = None,
             stack: str = "test", plain: dict[str, str] | None = None,
             into: Evaluation | None = None) -> Evaluation:
    """Run the program with `prefect-stack:*` config (objects as values) on mocks.

    `secrets` are set as secret config keys; `plain` as plaintext keys (to test refusals).
    Raises pulumi.RunError exactly as `pulumi up` would report it.
    """
    from components.program import run

    evaluation = into if into is not None else Evaluation()
    mocks = RecordingMocks(evaluation)
    pulumi.runtime.set_mocks(mocks, project="prefect-stack", stack=stack, preview=False,
                             monitor=RecordingMonitor(mocks))
    values = {f"prefect-stack:{k}": v if isinstance(v, str) else json.dumps(v)
              for k, v in config.items()}
    values.update({f"prefect-stack:{k}": v for k, v in (secrets or {}).items()})
    values.update({f"prefect-stack:{k}": v for k, v in (plain or {}).items()})
    pulumi.runtime.set_all_config(values, secret_keys=[f"prefect-stack:{k}" for k in secrets or {}])

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


def stack_file(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A committed stack file's config; `secure:` entries become known test secrets."""
    data = yaml.safe_load((ROOT / name).read_text())
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for key, value in (data.get("config") or {}).items():
        short = key.split(":", 1)[1]
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets[short] = f"test-secret-{short}"
        else:
            config[short] = value
    return config, secrets


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
