"""Run the real program on Pulumi's mock engine and read back the containers it emits.

No Docker daemon and no Pulumi CLI: the SDK's mock monitor stands in for the engine, so
what we read is exactly what `pulumi up` would send to the Docker provider. Used by
`python -m components.render`, the unit tests and the live tests (which start the emitted
containers as real processes).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.resource import DependencyResource
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components import yamlio
from components.config import PROJECT
from components.diagnose import near_miss_namespace
from components.spec import StackPlan
from components.yamlio import FAST_SAFE_LOADER, with_yaml12_booleans

# Pulumi's property-value wire format (the engine protocol, not an SDK detail): a secret
# travels as {SECRET_SIG: SECRET_VALUE, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
GET_LOGS = "docker:index/getLogs:getLogs"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()  # resource names from depends_on and input Outputs
    # input property -> resource names whose outputs it is built from (the engine's
    # propertyDependencies: what a delete-before-replace of those resources replaces)
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    provider: str = ""  # the explicit provider reference (`urn::id`); "" for the default one
    # the same dependencies as URNs: names alone are unique per type only (a container and a
    # network may both be `<prefix>-app`)
    dependency_urns: tuple[str, ...] = ()
    property_dependency_urns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def plain(self) -> dict[str, Any]:
        return unwrap(self.inputs)

    def dependencies_of_type(self, typ: str, inputs_only: bool = False) -> tuple[str, ...]:
        """Names of the resources of type `typ` this one depends on (through its inputs only,
        or through inputs and depends_on), sorted."""
        urns = ([u for us in self.property_dependency_urns.values() for u in us] if inputs_only
                else self.dependency_urns)
        return tuple(sorted({urn_name(u) for u in urns if urn_type(u) == typ}))


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def urn_type(urn: str) -> str:
    """`urn:pulumi:s::p::parent$type::name` -> `type`."""
    return urn.split("::")[-2].rsplit("$", 1)[-1]


@dataclass
class Evaluation:
    resources: list[Registered] = field(default_factory=list)
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)  # by resource name
    component_outputs: dict[str, Any] = field(default_factory=dict)
    # The plan the program deployed. Not the stack component itself: its Outputs hold every
    # asyncio task the evaluation made, and each live task slows every later evaluation's
    # `asyncio.all_tasks` (the SDK's wait for pending work) in a process that keeps many.
    plan: StackPlan | None = None
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)  # provider functions

    def outputs_of(self, component: str) -> dict[str, Any]:
        """The outputs component `component` (its resource name) registered, secrets wrapped."""
        (outputs,) = [o for urn, o in self.component_outputs.items() if urn_name(urn) == component]
        return outputs

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


@dataclass
class FakeDaemon:
    """The Docker daemon as the program sees it during one `up`: the log lines of containers
    that exist (`docker.get_logs`; any other name is "No such container", as on a fresh
    host) and the exit code each job container will exit with (0 unless listed)."""

    logs: dict[str, list[str]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)

    def get_logs(self, args: dict[str, Any]) -> Any:
        name = args["name"]
        if name not in self.logs:  # as the provider reports the daemon's 404
            return {}, [("name", f"dataSourceDockerLogsRead: error while asking for logs "
                                 f"Error response from daemon: No such container: {name}")]
        tail = int(args.get("tail") or 0)
        lines = self.logs[name][-tail:] if tail else self.logs[name]
        return {"name": name, "logsListStrings": list(lines)}


def image_id(resource_name: str) -> str:
    return "sha256:" + hashlib.sha256(resource_name.encode()).hexdigest()


class RecordingMocks(pulumi.runtime.Mocks):
    """Plausible provider outputs; generated passwords come from `password_for(key)`, or
    `generated_password` without one."""

    def __init__(self, evaluation: Evaluation, password_for: Callable[[str], str] | None,
                 daemon: FakeDaemon | None = None, preview: bool = False):
        self.evaluation = evaluation
        self.password_for = password_for
        self.daemon = daemon or FakeDaemon()
        self.preview = preview
        self.transforms: list[Callable[[pulumi.ResourceTransformArgs], Any]] = []

    def register_transform(self, transform) -> None:
        """Stack transforms (`pulumi.runtime.register_resource_transform`): the mock engine
        leaves running them to us; RecordingMonitor does, for every resource."""
        self.transforms.append(transform)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = unwrap(dict(args.inputs))
        if self.preview:  # `pulumi preview` of a new resource: only its inputs are known
            return "", outputs
        if args.typ == RANDOM_PASSWORD:
            # New keepers replace a RandomPassword, which then yields a new value; a caller's
            # password_for (render's markers) names the key only.
            rotation = (outputs.get("keepers") or {}).get("rotation")
            outputs["result"] = (self.password_for(args.name) if self.password_for
                                 else generated_password(args.name, rotation))
        if args.typ == BUILT_IMAGE:  # a local build's repoDigest is its image ID
            outputs["repoDigest"] = image_id(args.name)
        if args.typ == REMOTE_IMAGE:
            outputs["imageId"] = image_id(args.name)
        if args.typ == CONTAINER and outputs.get("mustRun") is False:
            outputs["exitCode"] = self.daemon.exit_codes.get(args.name, 0)
        if args.typ.startswith("kubernetes:") and "metadata" in outputs:
            # pulumi-kubernetes auto-names objects without metadata.name (name + suffix)
            outputs["metadata"] = {"name": kubernetes_auto_name(args.name),
                                   **outputs["metadata"]}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.evaluation.calls.append(args)
        if args.token == GET_LOGS:
            return self.daemon.get_logs(args.args)
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Records every registration as the engine receives it: inputs (secrets still
    wrapped), dependencies, and component outputs; runs the stack's resource transforms
    the way the engine does, with the options as the engine received them."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.mocks: RecordingMocks = mocks
        self.evaluation = mocks.evaluation

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        if request.type != "pulumi:pulumi:Stack":
            _thread_event_loop()  # the SDK calls monitors from worker threads
            inputs = rpc.deserialize_properties(request.object)
            urns_by_property = {key: tuple(deps.urns)
                                for key, deps in request.propertyDependencies.items()}
            self.evaluation.resources.append(Registered(
                request.type, request.name, inputs,
                tuple(urn_name(urn) for urn in request.dependencies),
                {key: tuple(urn_name(u) for u in urns) for key, urns in urns_by_property.items()},
                request.provider, tuple(request.dependencies), urns_by_property))
            args = pulumi.ResourceTransformArgs(custom=request.custom, type_=request.type,
                                                name=request.name, props=inputs,
                                                opts=transform_options(request))
            for transform in self.mocks.transforms:
                transform(args)
        return super().RegisterResource(request)

    def RegisterResourceOutputs(self, request):  # noqa: N802 (gRPC method name)
        outputs = rpc.deserialize_properties(request.outputs)
        self.evaluation.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


@functools.cache
def evaluation_loop() -> asyncio.AbstractEventLoop:
    """The event loop every evaluation runs on, one thread at a time (see `_on_own_thread`)."""
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_skip_raised_errors)
    return loop


def _on_own_thread(work: Callable[[], Any]) -> Any:
    """Run `work` (an evaluation) on a new thread, on `evaluation_loop()`, and return or raise
    what it did. Why: for each resource it registers, the SDK records the caller's stack
    trace, every frame down to the thread's first; called from a test runner that is some 60
    frames per resource, a tenth of an evaluation's time. A thread of its own starts at the
    evaluation."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(evaluation_loop())
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller's thread, raised there
            outcome["error"] = error
        finally:
            asyncio.set_event_loop(None)

    thread = threading.Thread(target=run, name="pulumi-program")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["value"]


def _thread_event_loop() -> asyncio.AbstractEventLoop:
    """Options hold resources, which hold futures: they need an event loop on this thread."""
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop


NEVER_RETRIEVED = "Future exception was never retrieved"
# The errors evaluations raised to their callers, as `type: message`.
_RAISED: set[str] = set()


def _error_key(error: BaseException) -> str:
    return f"{type(error).__qualname__}: {error}"


def _skip_raised_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed evaluation leaves its error in every Output built on the one that failed;
    the evaluation raised it to its caller already (as `pulumi up` reports it once), so
    asyncio's "never retrieved" report of each copy, when it is collected, only repeats it
    (thousands of tracebacks over the unit suite). Anything else is reported as usual."""
    error = context.get("exception")
    if context.get("message") == NEVER_RETRIEVED and error is not None \
            and _error_key(error) in _RAISED:
        return
    loop.default_exception_handler(context)


def transform_options(request) -> pulumi.ResourceOptions:
    """The options a resource transform receives from the engine for this registration."""
    return pulumi.ResourceOptions(
        parent=DependencyResource(request.parent) if request.parent else None,
        depends_on=[DependencyResource(urn) for urn in request.dependencies] or None,
        delete_before_replace=(request.deleteBeforeReplace
                               if request.deleteBeforeReplaceDefined else None),
        replace_on_changes=list(request.replaceOnChanges) or None,
        additional_secret_outputs=list(request.additionalSecretOutputs) or None,
        retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else None,
        ignore_changes=list(request.ignoreChanges) or None,
        protect=request.protect if request.HasField("protect") else None,
        custom_timeouts=pulumi.CustomTimeouts(
            create=request.customTimeouts.create or None,
            update=request.customTimeouts.update or None,
            delete=request.customTimeouts.delete or None)
        if request.HasField("customTimeouts") else None,
    )


def evaluate(config: Mapping[str, Any], secrets: Mapping[str, str] | None = None,
             stack: str = "test", plain: Mapping[str, str] | None = None,
             password_for: Callable[[str], str] | None = None,
             into: Evaluation | None = None, daemon: FakeDaemon | None = None,
             preview: bool = False) -> Evaluation:
    """Run the program with `prefect-stack:*` config (objects as values) on mocks.

    `daemon` is what the Docker host holds from earlier runs (default: nothing, a fresh host).
    `preview` evaluates as `pulumi preview` of a fresh stack: computed outputs (generated
    passwords, image IDs, exit codes) are unknown, and so is everything built from them.

    `secrets` are set as secret config keys; `plain` as plaintext keys. Generated passwords
    are `password_for(config key)`, by default derived from the key and its
    `secrets.rotation` label (a rotated secret is a new value). Raises pulumi.RunError exactly as
    `pulumi up` reports it.
    """
    return _on_own_thread(lambda: _evaluate(config, secrets, stack, plain, password_for, into,
                                            daemon, preview))


def _evaluate(config: Mapping[str, Any], secrets: Mapping[str, str] | None, stack: str,
              plain: Mapping[str, str] | None, password_for: Callable[[str], str] | None,
              into: Evaluation | None, daemon: FakeDaemon | None, preview: bool) -> Evaluation:
    from components.program import run

    evaluation = into if into is not None else Evaluation()
    mocks = RecordingMocks(evaluation, password_for, daemon, preview)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=RecordingMonitor(mocks))
    values = {full_key(k): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    values.update({full_key(k): v for k, v in (secrets or {}).items()})
    values.update({full_key(k): v for k, v in (plain or {}).items()})
    pulumi.runtime.set_all_config(values, secret_keys=[full_key(k) for k in secrets or {}])

    def record_options(args: pulumi.ResourceTransformArgs) -> None:
        if args.custom:
            evaluation.options[args.name] = args.opts

    @pulumi.runtime.test
    def program():
        pulumi.runtime.register_resource_transform(record_options)
        deployed = run()
        evaluation.plan = deployed.plan
        return deployed.ui_url

    try:
        program()
    except Exception as error:
        _RAISED.add(_error_key(error))
        raise
    return evaluation


def kubernetes_auto_name(resource_name: str) -> str:
    """The name the mocks give an auto-named Kubernetes object (Pulumi adds a random suffix)."""
    return f"{resource_name}-{hashlib.sha256(resource_name.encode()).hexdigest()[:8]}"


def generated_password(key: str, rotation: str | None = None) -> str:
    """A stable stand-in for a RandomPassword result: per key, and new per rotation label."""
    seed = key if rotation is None else f"{key}@{rotation}"
    return "gen-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


@with_yaml12_booleans
class PulumiYamlLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads stack files (YAML 1.2): only true/false are booleans,
    so `yes`, `on` and `off` stay strings, as they reach the program under `pulumi up`."""


@with_yaml12_booleans
class FastPulumiYamlLoader(FAST_SAFE_LOADER):
    """`PulumiYamlLoader`'s rules on libyaml's parser (components/yamlio.py)."""


def full_key(key: str) -> str:
    """`server` -> `prefect-stack:server`; a key that names its namespace stays as it is."""
    return key if ":" in key else f"{PROJECT}:{key}"


def stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A stack file's config for this project, and the keys that hold `secure:` values.

    As Pulumi reads it: a key without a namespace is in the project's. Keys in a namespace
    that looks like a misspelling of it (`prefectstack:`) are kept whole, so the program
    can point at them; other namespaces (provider settings such as `docker:host`) are not
    the program's and are left out."""
    data = yamlio.load(path.read_text(), FastPulumiYamlLoader, PulumiYamlLoader) or {}
    config: dict[str, Any] = {}
    secure: list[str] = []
    for key, value in (data.get("config") or {}).items():
        namespace, name = str(key).split(":", 1) if ":" in str(key) else ("", str(key))
        if namespace and namespace != PROJECT and not near_miss_namespace(namespace):
            continue
        short = name if namespace in ("", PROJECT) else str(key)
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
    labels: dict[str, str] = field(default_factory=dict)
    # containers whose outputs feed this one's inputs (e.g. a job gate label): Pulumi replaces
    # this container too when one of them is deleted before being replaced
    input_dependencies: tuple[str, ...] = ()
    delete_before_replace: bool = False
    replace_on_changes: tuple[str, ...] = ()  # inputs whose change replaces, beyond the provider's
    restart: str | None = None
    memory_mb: int | None = None
    cpus: str | None = None
    log_driver: str | None = None
    log_opts: dict[str, str] = field(default_factory=dict)
    security_opts: tuple[str, ...] = ()
    health_timing: dict[str, str | int] = field(default_factory=dict)  # interval, retries...
    hostname: str | None = None
    stop_grace_seconds: int | None = None
    wait_timeout_seconds: int | None = None
    other_inputs: dict[str, Any] = field(default_factory=dict)  # inputs not read into a field
    entrypoint: tuple[str, ...] | None = None  # replaces the image's when set; () clears it


_NO_OPTIONS = pulumi.ResourceOptions()
# Container inputs the fields above stand for; any other input lands in `other_inputs`.
_READ_INPUTS = frozenset({
    "name", "image", "command", "entrypoints", "envs", "uploads", "healthcheck", "networksAdvanced", "mounts",
    "ports", "user", "workingDir", "mustRun", "wait", "restart", "memory", "cpus", "logDriver",
    "logOpts", "securityOpts", "labels", "hostname", "destroyGraceSeconds", "waitTimeout",
    "attach", "logs"})


@dataclass(frozen=True)
class EmittedNetwork:
    name: str  # Docker network name
    internal: bool  # no route out of the host
    driver: str | None


@dataclass(frozen=True)
class EmittedVolume:
    name: str  # Docker volume name
    kept_on_destroy: bool  # retainOnDelete: `pulumi destroy` leaves it, and its data


def emitted_networks(evaluation: Evaluation) -> list[EmittedNetwork]:
    return sorted((EmittedNetwork(r.plain["name"], bool(r.plain.get("internal")),
                                  r.plain.get("driver"))
                   for r in evaluation.of_type(NETWORK)), key=lambda n: n.name)


def emitted_volumes(evaluation: Evaluation) -> list[EmittedVolume]:
    return sorted((EmittedVolume(r.plain["name"], bool(
        evaluation.options.get(r.name, _NO_OPTIONS).retain_on_delete))
                   for r in evaluation.of_type(VOLUME)), key=lambda v: v.name)


def _int(value: Any) -> int | None:
    """The engine carries numbers as floats; Docker's are whole."""
    return None if value is None else int(value)


def _health_timing(check: dict[str, Any]) -> dict[str, str | int]:
    names = {"startPeriod": "start_period", "startInterval": "start_interval"}
    return {names.get(k, k): (_int(v) if k == "retries" else v)
            for k, v in check.items() if k != "tests"}


def emitted_containers(evaluation: Evaluation) -> list[EmittedContainer]:
    """The containers in an order Pulumi could create them (dependencies first)."""
    images = {image_id(r.name): r.plain["name"] for r in evaluation.of_type(REMOTE_IMAGE)}
    images.update({image_id(r.name): r.plain["imageName"] for r in evaluation.of_type(BUILT_IMAGE)})
    networks = {r.name: r.plain["name"] for r in evaluation.of_type(NETWORK)}
    options = evaluation.options
    found = []
    for r in evaluation.of_type(CONTAINER):
        plain = r.plain
        found.append(EmittedContainer(
            name=r.name,
            aliases=tuple(dict.fromkeys(a for n in plain.get("networksAdvanced") or []
                                        for a in n.get("aliases") or [])),
            image=images.get(plain["image"], plain["image"]),
            command=tuple(plain["command"]) if plain.get("command") else None,
            entrypoint=None if plain.get("entrypoints") is None else tuple(plain["entrypoints"]),
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
            depends_on=r.dependencies_of_type(CONTAINER),
            labels={entry["label"]: entry["value"] for entry in plain.get("labels") or []},
            input_dependencies=r.dependencies_of_type(CONTAINER, inputs_only=True),
            delete_before_replace=bool(options.get(r.name, _NO_OPTIONS).delete_before_replace),
            replace_on_changes=tuple(options.get(r.name, _NO_OPTIONS).replace_on_changes or ()),
            restart=plain.get("restart"),
            memory_mb=_int(plain.get("memory")),
            cpus=plain.get("cpus"),
            log_driver=plain.get("logDriver"),
            log_opts=dict(plain.get("logOpts") or {}),
            security_opts=tuple(plain.get("securityOpts") or ()),
            health_timing=_health_timing(plain.get("healthcheck") or {}),
            hostname=plain.get("hostname"),
            stop_grace_seconds=_int(plain.get("destroyGraceSeconds")),
            wait_timeout_seconds=_int(plain.get("waitTimeout")),
            other_inputs={k: v for k, v in plain.items() if k not in _READ_INPUTS},
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
