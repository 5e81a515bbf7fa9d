"""Read a docker-compose project as `docker compose` does, for the importer.

Env files, interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
`${VAR:+alt}`, `$VAR`, `$$`), profiles and the compose-spec schema. Every interpolated
string remembers which variables went into it, so the importer can tell that
`admin:${FLOWER_PASSWORD:-flower123}` holds a password even though the text does not say so.
Pure: no Docker, no network; only the interpolation environment the caller passes in.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import yamlio

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ComposeError(Exception):
    """The project cannot be read at all (bad YAML, schema, required variable missing)."""


@dataclass(frozen=True)
class Substitution:
    """One variable that went into an interpolated string."""

    name: str
    value: str
    defaulted: bool = False  # the value is the compose file's default, the variable was unset


@dataclass(frozen=True)
class Text:
    """An interpolated string and the variables it was built from."""

    value: str
    subs: tuple[Substitution, ...] = ()


# --- interpolation ------------------------------------------------------------------------

def interpolate(template: str, env: Mapping[str, str], where: str = "") -> Text:
    """Compose interpolation of one string; unset variables without default become "" and
    are listed as substitutions with an empty value."""
    out: list[str] = []
    subs: list[Substitution] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 == len(template):
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(template, i + 2, where)
            text = _braced(template[i + 2:end], env, where)
            out.append(text.value)
            subs += text.subs
            i = end + 1
        elif match := _NAME.match(template, i + 1):
            name = match.group(0)
            value = env.get(name, "")
            out.append(value)
            subs.append(Substitution(name, value))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return Text("".join(out), tuple(subs))


def _closing_brace(template: str, start: int, where: str) -> int:
    depth = 1
    i = start
    while i < len(template):
        if template.startswith("$$", i):
            i += 2
            continue
        if template.startswith("${", i):
            depth += 1
            i += 2
            continue
        if template[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ComposeError(f"{where}: unterminated `${{` in a value")


def _braced(body: str, env: Mapping[str, str], where: str) -> Text:
    match = _NAME.match(body)
    if match is None:
        raise ComposeError(f"{where}: invalid interpolation `${{{body}}}`")
    name, rest = match.group(0), body[match.end():]
    value = env.get(name)
    if rest == "":
        return Text(value or "", (Substitution(name, value or ""),))
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise ComposeError(f"{where}: invalid interpolation `${{{body}}}`")
    missing = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        if missing:
            inner = interpolate(arg, env, where)
            return Text(inner.value, (Substitution(name, inner.value, defaulted=True), *inner.subs))
        return Text(value or "", (Substitution(name, value or ""),))
    if op in (":?", "?"):
        if missing:
            message = interpolate(arg, env, where).value or "is not set"
            raise ComposeError(f"{where}: required variable {name} is missing: {message}")
        return Text(value or "", (Substitution(name, value or ""),))
    if missing:
        return Text("", (Substitution(name, ""),))
    inner = interpolate(arg, env, where)
    return Text(inner.value, (Substitution(name, value or ""), *inner.subs))


# --- env files ----------------------------------------------------------------------------

def parse_env_file(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Text]:
    """A dotenv file as compose reads it: KEY=VALUE lines, `#` comments, `export ` prefix,
    single quotes literal, double quotes with escapes, unquoted and double-quoted values
    interpolated (earlier keys of the same file first, then `env`)."""
    values: dict[str, Text] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise ComposeError(f"{path}:{i}: not a KEY=VALUE line")
        if not sep:
            continue  # `KEY` alone: taken from the shell, which the importer does not read
        raw = raw.strip()
        scope = {**(env or {}), **{k: v.value for k, v in values.items()}}
        if raw[:1] == "'":
            while not raw.endswith("'") or len(raw) == 1:
                if i >= len(lines):
                    raise ComposeError(f"{path}: unterminated ' quote for {key}")
                raw += "\n" + lines[i]
                i += 1
            values[key] = Text(raw[1:-1])
        elif raw[:1] == '"':
            while not _ends_double_quoted(raw):
                if i >= len(lines):
                    raise ComposeError(f"{path}: unterminated \" quote for {key}")
                raw += "\n" + lines[i]
                i += 1
            body = raw[1:raw.rindex('"')]
            body = re.sub(r'\\([\\"nrt$])', lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(
                m.group(1), m.group(1)), body)
            values[key] = interpolate(body, scope, f"{path.name}:{key}")
        else:
            raw = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
            values[key] = interpolate(raw, scope, f"{path.name}:{key}")
    return values


def _ends_double_quoted(raw: str) -> bool:
    body = raw[1:]
    escaped = False
    for ch in body:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return True
    return False


# --- the project --------------------------------------------------------------------------

@dataclass
class Project:
    """An interpolated compose file plus where each string came from."""

    path: Path
    doc: dict[str, Any]
    origins: dict[str, tuple[Substitution, ...]] = field(default_factory=dict)  # path -> subs
    unset: list[str] = field(default_factory=list)  # variables used but set nowhere
    env: dict[str, str] = field(default_factory=dict)  # the interpolation environment

    @property
    def directory(self) -> Path:
        return self.path.parent

    def subs(self, path: str) -> tuple[Substitution, ...]:
        return self.origins.get(path, ())


def load_project(path: Path, env_files: list[Path], profiles: list[str] | None = None
                 ) -> tuple[Project, list[str]]:
    """Read, interpolate and validate a compose file; drop services of inactive profiles.

    Returns the project and the names of the services left out by profile. Without
    `env_files`, `.env` beside the compose file is read if it exists (as compose does). The
    shell environment is never read: the result depends only on the files.
    """
    try:
        raw = yamlio.load(path.read_text())
    except yaml.YAMLError as err:
        raise ComposeError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise ComposeError(f"{path}: {err.strerror}") from None
    if not isinstance(raw, dict):
        raise ComposeError(f"{path}: a compose file is a mapping with `services:`")
    if not env_files and (path.parent / ".env").is_file():
        env_files = [path.parent / ".env"]
    env: dict[str, str] = {}
    for env_file in env_files:
        try:
            env.update({k: v.value for k, v in parse_env_file(env_file, env).items()})
        except OSError as err:
            raise ComposeError(f"--env-file {env_file}: {err.strerror}") from None
    project = Project(path=path, doc={}, env=env)
    project.doc = _interpolate_tree(raw, env, "", project)
    validate_schema(project.doc, path)
    active = set(profiles or [])
    skipped = [name for name, svc in (project.doc.get("services") or {}).items()
               if (svc or {}).get("profiles") and not active & set(svc["profiles"])]
    for name in skipped:
        del project.doc["services"][name]
    return project, skipped


def _interpolate_tree(node: Any, env: Mapping[str, str], where: str, project: Project) -> Any:
    if isinstance(node, dict):
        return {k: node[k] if str(k).startswith("x-") and not where else
                _interpolate_tree(v, env, child(where, str(k)), project)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env, f"{where}[{i}]", project) for i, v in enumerate(node)]
    if isinstance(node, str):
        text = interpolate(node, env, where)
        if text.subs:
            project.origins[where] = text.subs
            project.unset += [s.name for s in text.subs if s.name not in env and not s.defaulted
                              and s.name not in project.unset]
        return text.value
    return node


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.cache
def compose_spec_validator() -> Any:
    """A validator for the compose-spec schema bundled with check-jsonschema
    (`vendor.compose-spec`), read as the file it is: importing check_jsonschema loads its
    whole command line (0.2-0.4 s of CPU) first."""
    from jsonschema.validators import validator_for

    package = importlib.util.find_spec("check_jsonschema")
    if package is None or package.origin is None:
        raise ComposeError("reading compose files needs check-jsonschema (requirements-dev.txt)")
    schema = json.loads((Path(package.origin).parent / "builtin_schemas" / "vendor" /
                         "compose-spec.json").read_text())
    return validator_for(schema)(schema)


def validate_schema(doc: dict[str, Any], path: Path) -> None:
    """The compose-spec schema bundled with check-jsonschema (`vendor.compose-spec`).

    Messages name the compose path and never echo a value (it may be a secret)."""
    errors = sorted(compose_spec_validator().iter_errors(doc),
                    key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = []
    for error in errors[:20]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = error.message
        if isinstance(error.instance, str | int | float) and not isinstance(error.instance, bool):
            message = message.replace(repr(error.instance), "<value>")
        lines.append(f"  - {where.lstrip('.') or '(top level)'}: {message}")
    raise ComposeError(f"{path}: not a valid compose file (compose-spec schema, "
                       f"check-jsonschema vendor.compose-spec):\n" + "\n".join(lines))


def walk_strings(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, string) in a tree, for scans."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(v, child(where, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_strings(v, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node
