"""Print what a stack would send to Docker, with no Docker and no Pulumi CLI:
`./render dev`, `./render examples/003-traefik-many-services.yaml`, `--format compose`.

The program runs on Pulumi's mock engine, so this is what `pulumi up` would send to the Docker
provider: every container input (image, command, environment, ports, volumes, networks,
health check and its timings, restart policy, memory and CPU limits, log driver and options,
security options, user, labels, uploaded files), the networks (internal or not), the volumes
(kept on destroy or not) and the proxy's routes. Secret values never appear: each is shown as
`<secret:KEY>` (`<bcrypt:KEY>` for a password hash), naming the config key that holds it;
in compose format a secret is the compose variable `${KEY}`.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.compose_export import compose_document, image_builds
from components.config import PROJECT
from components.dryrun import (
    EmittedContainer,
    Evaluation,
    emitted_containers,
    emitted_networks,
    emitted_volumes,
    evaluate,
    stack_file,
)
from components.kubernetes.emitted import kubernetes_objects
from components.spec import SecretText, StackPlan, bcrypt_hash

PROJECT_DIR = Path(__file__).resolve().parent.parent
_MARKER = re.compile(r"__secret_([A-Za-z][A-Za-z0-9_]*?)__")
_BCRYPT_USE = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\|bcrypt\}")
Redact = Callable[[str], str]


def marker(key: str) -> str:
    """A stand-in secret value that survives every filter (url, sql, conf) unchanged."""
    return f"__secret_{key}__"


def bcrypt_keys(plan: StackPlan) -> list[str]:
    """Config keys whose value the plan bcrypt-hashes somewhere (proxy basic auth)."""
    texts = [v for s in plan.services for v in s.env.values() if isinstance(v, SecretText)]
    texts += [u.content for s in plan.services for u in s.uploads
              if isinstance(u.content, SecretText)]
    if plan.login is not None:
        texts.append(plan.login)
    return sorted({m.group(1) for t in texts for m in _BCRYPT_USE.finditer(t.template)})


def redactor(plan: StackPlan, stack: str, secret: Callable[[str], str] = lambda k: f"<secret:{k}>"
             ) -> Redact:
    """Text -> text with every secret marker and marker hash replaced. Each hash is computed
    once per key here (bcrypt is deliberately slow), not once per redacted value."""
    hashes = {bcrypt_hash(marker(key), f"{PROJECT}/{stack}/{key}"): key
              for key in bcrypt_keys(plan)}

    def redact(text: str) -> str:
        for digest, key in hashes.items():
            if digest in text:
                text = text.replace(digest, f"<bcrypt:{key}>")
        return _MARKER.sub(lambda m: secret(m.group(1)), text)

    return redact


def describe(container: EmittedContainer, hide: Redact) -> dict[str, Any]:
    """One container as plain data, everything the Docker provider receives, secrets hidden."""
    c = container
    entry: dict[str, Any] = {"image": c.image, "aliases": list(c.aliases)}
    optional: dict[str, Any] = {
        "hostname": c.hostname,
        "entrypoint": None if c.entrypoint is None else [hide(a) for a in c.entrypoint],
        "command": [hide(a) for a in c.command] if c.command else None,
        "user": c.user,
        "working_dir": c.working_dir,
        "environment": {k: hide(v) for k, v in sorted(c.env.items())},
        "ports": [f"{ip}:{host}:{inner}" for ip, host, inner in c.ports],
        "volumes": [f"{m.source}:{m.target}" + (":ro" if m.read_only else "") for m in c.mounts],
        "networks": {net: list(aliases) for net, aliases in c.networks.items()},
        "healthcheck": {"test": [hide(t) for t in c.healthcheck], **c.health_timing}
        if c.healthcheck else None,
        "depends_on": list(c.depends_on),
        "run": "once; dependents wait for exit code 0" if c.one_shot
        else "until stopped; dependents wait for healthy" if c.wait_healthy
        else "until stopped",
        "wait_timeout_seconds": c.wait_timeout_seconds if c.wait_healthy else None,
        "restart": c.restart,
        "memory_mb": c.memory_mb,
        "cpus": c.cpus,
        "logging": {"driver": c.log_driver, "options": dict(c.log_opts)} if c.log_driver else None,
        "security_opt": list(c.security_opts),
        "stop_grace_seconds": c.stop_grace_seconds,
        "labels": {k: hide(v) for k, v in sorted(c.labels.items())},
        # Tabs shown as spaces: YAML cannot print a tab inside a `|` block.
        "files": {path: hide(content).expandtabs(4) for path, content in c.uploads.items()},
        "other_inputs": c.other_inputs,
    }
    # an empty entrypoint is meaningful (it clears the image's), so it is kept
    entry.update({k: v for k, v in optional.items()
                  if v is not None and (v not in ([], {}) or k == "entrypoint")})
    return entry


@dataclass(frozen=True)
class Target:
    """What to render: a stack file and the stack name it is evaluated as."""

    path: Path
    stack: str


def resolve(target: str, project_dir: Path) -> Target:
    """`dev` -> <project>/Pulumi.dev.yaml; a path (has `/` or ends in .yaml) is used as given."""
    if "/" in target or target.endswith((".yaml", ".yml")):
        path = Path(target).resolve()
        name = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
        return Target(path, name)
    return Target(project_dir / f"Pulumi.{target}.yaml", target)


def stacks_in(project_dir: Path) -> list[str]:
    return [p.name[len("Pulumi."):-len(".yaml")] for p in sorted(project_dir.glob("Pulumi.*.yaml"))]


def evaluated(target: Target, project_dir: Path) -> Evaluation:
    """Run the program on mocks, from the project directory as `pulumi up` would (relative
    bind-mount paths such as ./flows resolve there); secrets are markers."""
    config, secure = stack_file(target.path)
    with contextlib.chdir(project_dir):
        return evaluate(config, {key: marker(key) for key in secure}, stack=target.stack,
                        password_for=marker)


def render(target: Target, project_dir: Path = PROJECT_DIR, fmt: str = "yaml") -> str:
    """The stack as YAML (`yaml`: annotated, `compose`: a docker-compose file); raises
    pulumi.RunError on bad config."""
    return text_of(evaluated(target, project_dir), target.stack, fmt, project_dir)


def text_of(evaluation: Evaluation, stack: str, fmt: str = "yaml",
            project_dir: Path = PROJECT_DIR) -> str:
    """An evaluation of stack `stack` (secrets as markers) as text in format `fmt`;
    `project_dir` is where it was evaluated (build contexts are relative to it)."""
    plan = evaluation.plan
    containers = emitted_containers(evaluation)
    networks, volumes = emitted_networks(evaluation), emitted_volumes(evaluation)
    if fmt == "compose":
        hide = redactor(plan, stack, secret=lambda key: "${" + key + "}")
        document = compose_document(plan.prefix, containers, networks, volumes, hide,
                                    image_builds(evaluation, project_dir))
        header = (f"# {stack}: what `pulumi up` would run, as a compose file "
                  "(./render).\n# Secrets are compose variables named "
                  "after their config key; <bcrypt:KEY> is a bcrypt hash of that secret.\n")
    else:
        hide = redactor(plan, stack)
        document = {
            "stack": stack,
            "ui": plan.ui_url,
            "services": {c.name: describe(c, hide) for c in containers},
            "networks": {n.name: {"internal": n.internal, "driver": n.driver} for n in networks},
            "volumes": {v.name: {"kept_on_destroy": v.kept_on_destroy} for v in volumes},
            "routes": [{k: v for k, v in asdict(r).items() if v not in ((), None, "", False)}
                       for r in plan.routes],
        }
        objects = kubernetes_objects(evaluation)  # target.kind kubernetes
        if objects:
            document["kubernetes"] = {name: _redact_all(obj, hide) for name, obj in objects.items()}
        header = ""
    return header + yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, width=100,
                              allow_unicode=True)


def _redact_all(value: Any, hide: Redact) -> Any:
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, dict):
        return {k: _redact_all(v, hide) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v, hide) for v in value]
    return value


class _BlockDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml: 10x faster
    """Multi-line strings (uploaded files) as `|` blocks, readable as the files they are."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="./render", description=__doc__.split("\n\n")[0])
    p.add_argument("target", nargs="?", metavar="STACK|FILE",
                   help="a stack name (reads Pulumi.<stack>.yaml in the project directory) or "
                   "the path of a stack file, e.g. examples/003-traefik-many-services.yaml")
    p.add_argument("-s", "--stack", help="same as STACK (kept for scripts)")
    p.add_argument("-f", "--format", choices=("yaml", "compose"), default="yaml",
                   help="yaml (default): everything the provider receives, annotated; "
                   "compose: a docker-compose file of the same stack")
    p.add_argument("-C", "--project-dir", type=Path, default=PROJECT_DIR,
                   help="directory holding Pulumi.yaml (default: this checkout)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = args.target or args.stack
    if not name or (args.target and args.stack):
        parser().error("give one stack name or stack file")
    project_dir = args.project_dir.resolve()
    target = resolve(name, project_dir)
    if not target.path.is_file():
        print(f"error: {target.path} does not exist (stacks in {project_dir}: "
              f"{', '.join(stacks_in(project_dir)) or 'none'})", file=sys.stderr)
        return 2
    try:
        text = render(target, project_dir, args.format)
    except pulumi.RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except yaml.YAMLError as err:
        print(f"error: {target.path} is not valid YAML: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
