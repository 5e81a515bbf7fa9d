"""Print the containers a stack would run, like `docker compose config`, with no Docker and
no Pulumi CLI: `python -m components.render -s dev` (from the project directory).

The program runs on Pulumi's mock engine, so this is what `pulumi up` would send to Docker:
image, command, environment, ports, volumes, networks, health checks, dependencies, uploaded
files and the proxy's routes. Secret values never appear: each is shown as `<secret:KEY>`
(or `<bcrypt:KEY>` for a password hash), naming the config key that holds it.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.config import PROJECT
from components.dryrun import EmittedContainer, emitted_containers, evaluate, stack_file
from components.spec import bcrypt_hash

_MARKER = re.compile(r"__secret_([A-Za-z][A-Za-z0-9_]*?)__")


def marker(key: str) -> str:
    """A stand-in secret value that survives every filter (url, sql, conf) unchanged."""
    return f"__secret_{key}__"


def redact(text: str, stack: str, keys: list[str]) -> str:
    for key in keys:
        text = text.replace(bcrypt_hash(marker(key), f"{PROJECT}/{stack}/{key}"), f"<bcrypt:{key}>")
    return _MARKER.sub(lambda m: f"<secret:{m.group(1)}>", text)


def describe(container: EmittedContainer, stack: str, keys: list[str]) -> dict[str, Any]:
    """One container as compose-like plain data, secrets redacted."""
    hide = lambda text: redact(text, stack, keys)  # noqa: E731
    entry: dict[str, Any] = {"image": container.image, "aliases": list(container.aliases)}
    if container.command:
        entry["command"] = list(container.command)
    if container.user:
        entry["user"] = container.user
    if container.working_dir:
        entry["working_dir"] = container.working_dir
    if container.env:
        entry["environment"] = {k: hide(v) for k, v in sorted(container.env.items())}
    if container.ports:
        entry["ports"] = [f"{ip}:{host}:{inner}" for ip, host, inner in container.ports]
    if container.mounts:
        entry["volumes"] = [f"{m.source}:{m.target}" + (":ro" if m.read_only else "")
                            for m in container.mounts]
    entry["networks"] = {net: list(aliases) for net, aliases in container.networks.items()}
    if container.healthcheck:
        entry["healthcheck"] = list(container.healthcheck)
    if container.depends_on:
        entry["depends_on"] = list(container.depends_on)
    if container.one_shot:
        entry["run"] = "once; dependents wait for exit code 0"
    elif container.wait_healthy:
        entry["run"] = "until stopped; dependents wait for healthy"
    if container.uploads:
        # Tabs shown as spaces: YAML cannot print a tab inside a `|` block.
        entry["files"] = {path: hide(content).expandtabs(4)
                          for path, content in container.uploads.items()}
    return entry


def render(project_dir: Path, stack: str) -> str:
    """The stack's planned containers and routes as YAML; raises pulumi.RunError on bad config."""
    config, secure = stack_file(project_dir / f"Pulumi.{stack}.yaml")
    secrets = {key: marker(key) for key in secure}
    evaluation = evaluate(config, secrets, stack=stack, password_for=marker)
    plan = evaluation.stack.plan
    keys = [secret.key for secret in plan.secrets]
    document = {
        "stack": stack,
        "ui": plan.ui_url,
        "services": {c.name: describe(c, stack, keys) for c in emitted_containers(evaluation)},
        "routes": [{k: v for k, v in asdict(r).items() if v not in ((), None, "", False)}
                   for r in plan.routes],
    }
    return yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, width=100, allow_unicode=True)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (uploaded files) as `|` blocks, readable as the files they are."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("-s", "--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("-C", "--project-dir", type=Path, default=Path.cwd(),
                        help="directory holding Pulumi.yaml (default: current directory)")
    args = parser.parse_args(argv)
    path = args.project_dir / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        print(f"error: {path} does not exist (stacks here: "
              f"{', '.join(p.name[7:-5] for p in sorted(args.project_dir.glob('Pulumi.*.yaml')))})",
              file=sys.stderr)
        return 2
    try:
        text = render(args.project_dir, args.stack)
    except pulumi.RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except yaml.YAMLError as err:
        print(f"error: {path} is not valid YAML: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
