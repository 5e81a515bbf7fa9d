"""Import a docker-compose project into a stack file:

    python -m components.importer COMPOSE.yml [--env-file F ...] [--profile P ...] \\
        --stack NAME [--out DIR]

writes `Pulumi.NAME.yaml` (Prefect server/workers, PostgreSQL, Redis and the Caddy/Traefik
routes on the typed sections; every other container under `services:`), `set-secrets-NAME.sh`
(mode 0600: one `pulumi config set --secret` per secret value found) and
`import-report-NAME.txt` (every compose path that could not be mapped, and every place the
stack deliberately differs). The written stack is then loaded by the program's own loader;
when it does not load, the loader's messages are printed. No secret value is ever printed
or written into the stack file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from components import secretscan
from components.compose import ComposeError, Project, Substitution, load_project
from components.composeparts import (
    Port,
    UnreadableError,
    Volume,
    command_list,
    health_test,
    image_repo,
    megabytes,
    parse_port,
    parse_volume,
    seconds,
    service_name,
)
from components.config import (
    DEFAULT_CADDY_IMAGE,
    DEFAULT_POSTGRES_IMAGE,
    DEFAULT_PREFECT_IMAGE,
    DEFAULT_REDIS_IMAGE,
    DEFAULT_TRAEFIK_IMAGE,
    PROJECT,
    SECTIONS,
)
from components.images import is_floating_major, is_pinned
from components.proxyimport import (
    ProxyImport,
    ProxyImportError,
    adapt_caddyfile,
    caddy_import,
    traefik_import,
    traefik_static,
)

SERVER, POSTGRES, REDIS = "prefect-server", "postgres", "redis"
FILE_LIMIT = 64 * 1024  # bind-mounted files up to this size are uploaded as `files:`
# Keys each kind of container maps; whatever else a compose service sets is reported.
WORKLOAD_KEYS = {"image", "command", "environment", "env_file", "volumes", "depends_on",
                 "secrets", "configs"}
SERVICE_KEYS = WORKLOAD_KEYS | {"ports", "expose", "healthcheck", "deploy", "user", "mem_limit",
                                "cpus", "working_dir"}
WORKER_KEYS = WORKLOAD_KEYS | {"healthcheck", "deploy", "mem_limit", "cpus", "working_dir"}
SERVER_KEYS = {"image", "command", "environment", "env_file", "ports", "volumes", "healthcheck",
               "deploy", "mem_limit", "cpus", "depends_on"}
INFRA_KEYS = {"image", "environment", "env_file", "ports", "volumes", "healthcheck"}
PROXY_KEYS = {"image", "command", "environment", "ports", "volumes", "labels", "depends_on"}
# Keys whose job the stack does itself: reported as notes, not as losses.
STACK_KEYS = {"container_name": "containers are named <namePrefix>-<name>",
              "networks": "the stack's networks (app; data for PostgreSQL/Redis clients) "
                          "replace compose networks",
              "restart": "the stack sets restart policies",
              "logging": "the stack sets log rotation (logging:)",
              "hostname": "the stack names hosts after services",
              "profiles": "profile active: imported"}
# Settings the stack derives itself: compose values for them are replaced, with a note.
STACK_PREFECT_ENV = {
    "PREFECT_SERVER_API_HOST", "PREFECT_SERVER_API_PORT", "PREFECT_API_URL", "PREFECT_UI_API_URL",
    "PREFECT_SERVER_UI_API_URL", "PREFECT_UI_URL", "PREFECT_SERVER_UI_SERVE_BASE",
    "PREFECT_UI_SERVE_BASE", "PREFECT_SERVER_API_BASE_PATH", "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", "PREFECT_API_KEY",
    "PREFECT_API_DATABASE_MIGRATE_ON_START", "PREFECT_SERVER_DATABASE_MIGRATE_ON_START",
    "PREFECT_MESSAGING_BROKER", "PREFECT_MESSAGING_CACHE", "PREFECT_SERVER_DOCKET_URL",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", "PREFECT_LOGGING_SERVER_LEVEL",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE", "PREFECT_SQLALCHEMY_POOL_SIZE",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW", "PREFECT_SQLALCHEMY_MAX_OVERFLOW",
    "PREFECT_WORKER_QUERY_SECONDS", "PREFECT_WORKER_PREFETCH_SECONDS", "EXTRA_PIP_PACKAGES"}
_STACK_ENV_PREFIXES = ("PREFECT_REDIS_MESSAGING_", "PREFECT_SERVER_EVENTS_")


# --- report and secrets -------------------------------------------------------------------

@dataclass
class Report:
    """What did not make it into the stack (unmapped) and where the stack differs (notes),
    each by compose path. Messages name variables and keys, never values."""

    unmapped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the loader's, when the stack does not load

    def unmap(self, path: str, why: str) -> None:
        if (path, why) not in self.unmapped:
            self.unmapped.append((path, why))

    def note(self, path: str, what: str) -> None:
        if (path, what) not in self.notes:
            self.notes.append((path, what))

    def text(self, stack: str) -> str:
        lines = [f"Import report for stack `{stack}`", ""]
        lines.append(f"Not imported ({len(self.unmapped)}): handle these by hand")
        lines += [f"  - {path}: {why}" for path, why in self.unmapped] or ["  (none)"]
        lines += ["", f"Translated differently ({len(self.notes)})"]
        lines += [f"  - {path}: {what}" for path, what in self.notes] or ["  (none)"]
        if self.problems:
            lines += ["", "The stack file does NOT load yet (the program's own checks):"]
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines) + "\n"


class SecretBook:
    """Secret values by config key. One key per distinct value: the same password used by
    two containers is one secret, set once."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reserved: set[str] = set(SECTIONS)

    def key(self, hint: str, value: str) -> str:
        for key, known in self.values.items():
            if known == value:
                return key
        base = secretscan.config_key(hint)
        key, n = base, 2
        while key in self.values or key in self.reserved:
            key, n = f"{base}{n}", n + 1
        self.values[key] = value
        return key

    def exact(self, key: str, value: str) -> str:
        """Claim a given key name (e.g. `basicAuthPassword`); reuse it if the value matches."""
        if key in self.values and self.values[key] != value:
            return self.key(key, value)
        self.values[key] = value
        return key


@dataclass
class EnvEntry:
    name: str
    value: str
    subs: tuple[Substitution, ...]
    path: str


@dataclass
class Imported:
    config: dict[str, Any]  # section -> plain data (camelCase), in SECTIONS order
    secrets: dict[str, str]
    report: Report
    loads: bool


# --- the importer -------------------------------------------------------------------------

class _Importer:
    def __init__(self, project: Project, skipped: list[str], stack: str):
        self.project = project
        self.stack = stack
        self.services: dict[str, dict[str, Any]] = dict(project.doc.get("services") or {})
        self.report = Report()
        self.book = SecretBook()
        self.skipped = skipped
        self.roles: dict[str, str] = {}
        self.names: dict[str, str] = {}  # compose name (and container_name) -> stack DNS name
        self.cfg: dict[str, Any] = {}
        self.server_port = 4200
        self.base_path = "/"
        self.pg: dict[str, Any] | None = None
        self.pg_sources: list[str] = []
        self.databases: dict[str, dict[str, str]] = {}  # db name -> {owner, key}
        self.redis_source: str | None = None
        self.proxy: ProxyImport | None = None
        self.proxy_source: str | None = None
        self.pool_source: dict[str, str] = {}  # work pool -> compose worker service

    # -- roles ---------------------------------------------------------------------------

    def classify(self) -> None:
        completed = {dep for svc in self.services.values()
                     for dep, cond in _depends(svc).items()
                     if cond.get("condition") == "service_completed_successfully"}
        for name, svc in self.services.items():
            repo = image_repo(str(svc.get("image") or ""))
            words = " ".join(command_list(svc.get("command") or []))
            base = repo.rsplit("/", 1)[-1]
            if "server services start" in words:
                role = "prefect-services"
            elif "worker start" in words or "agent start" in words:
                role = "worker"
            elif "server start" in words or (repo == "prefecthq/prefect" and not words):
                role = "server"
            elif base in ("postgres", "postgis", "timescaledb"):
                role = "postgres"
            elif base in ("redis", "valkey", "redis-stack-server") and self.redis_source is None:
                role = "redis"
                self.redis_source = name
            elif base == "caddy":
                role = "caddy"
            elif base == "traefik":
                role = "traefik"
            elif name in completed or str(svc.get("restart", "")).strip() == "no" and any(
                    name in _depends(other) for other in self.services.values()):
                role = "job"
            else:
                role = "service"
            self.roles[name] = role
        servers = [n for n, r in self.roles.items() if r == "server"]
        for extra in servers[1:]:
            self.roles[extra] = "service"
            self.report.unmap(f"services.{extra}", "a second Prefect server; the stack runs "
                              "one (scale it with server.replicas); imported as a plain service")
        proxies = [n for n, r in self.roles.items() if r in ("caddy", "traefik")]
        for extra in proxies[1:]:
            self.roles[extra] = "service"
            self.report.unmap(f"services.{extra}", "a second reverse proxy; imported as a "
                              "plain service")
        for name, role in self.roles.items():
            stack_name = {"server": SERVER, "prefect-services": SERVER, "postgres": POSTGRES,
                          "redis": REDIS}.get(role, service_name(name))
            self.names[name] = stack_name
            container = self.services[name].get("container_name")
            if container:
                self.names[str(container)] = stack_name

    # -- env -----------------------------------------------------------------------------

    def env_entries(self, name: str) -> list[EnvEntry]:
        """env_file entries, then `environment` (which wins), as compose merges them."""
        from components.compose import parse_env_file

        svc = self.services[name]
        entries: dict[str, EnvEntry] = {}
        files = svc.get("env_file") or []
        for i, item in enumerate([files] if isinstance(files, str | dict) else files):
            spec = item if isinstance(item, dict) else {"path": item}
            path = (self.project.directory / spec["path"]).resolve()
            where = f"services.{name}.env_file[{i}]"
            if not path.is_file():
                if spec.get("required", True):
                    raise ComposeError(f"{where}: env file {spec['path']} does not exist")
                self.report.note(where, f"optional env file {spec['path']} does not exist")
                continue
            for key, text in parse_env_file(path, self.project.env).items():
                entries[key] = EnvEntry(key, text.value, text.subs, f"{where}:{key}")
        env = svc.get("environment") or {}
        items = (env.items() if isinstance(env, dict) else
                 ((e.split("=", 1) + [None])[:2] for e in env))
        for i, (key, value) in enumerate(items):
            where = (f"services.{name}.environment.{key}" if isinstance(env, dict)
                     else f"services.{name}.environment[{i}]")
            if value is None:
                if key in self.project.env:
                    value = self.project.env[key]
                    subs: tuple[Substitution, ...] = (Substitution(key, value),)
                else:
                    self.report.unmap(where, f"`{key}` takes its value from the shell, which "
                                      "the importer does not read; set it in the stack by hand")
                    continue
            else:
                subs = self.project.subs(where)
            value = str(value).lower() if isinstance(value, bool) else str(value)
            entries[key] = EnvEntry(key, value, subs, where)
        return list(entries.values())

    def secret_key(self, entry: EnvEntry) -> str:
        """Name a secret after the variable it came from (`${DOLT_ROOT_PASSWORD}`), else after
        the env entry."""
        from_vars = secretscan.from_secret_variable(entry.subs)
        hint = from_vars[0].name if len(from_vars) == 1 and from_vars[0].value == entry.value \
            else entry.name
        return self.book.key(hint, entry.value)

    def rewrite_hosts(self, value: str) -> str:
        """Compose service names inside URLs (and bare names) -> the stack's DNS names."""
        if value in self.names:
            return self.names[value]
        try:
            url = urlsplit(value)
        except ValueError:
            return value
        if not url.scheme or not url.hostname or url.hostname not in self.names:
            return value
        new_host = self.names[url.hostname]
        netloc = url.netloc.rsplit("@", 1)
        host_port = netloc[-1].replace(url.hostname, new_host, 1)
        if self.roles.get(url.hostname) in ("postgres",) or new_host == POSTGRES:
            host_port = f"{POSTGRES}:5432"
        netloc[-1] = host_port
        return urlunsplit(url._replace(netloc="@".join(netloc)))

    def touches_data(self, name: str, entries: Iterable[EnvEntry]) -> bool:
        data_names = {n for n, r in self.roles.items() if r in ("postgres", "redis")}
        data_names |= {str(self.services[n].get("container_name")) for n in data_names
                       if self.services[n].get("container_name")}
        for entry in entries:
            host = _url_host(entry.value)
            if entry.value in data_names or host in data_names:
                return True
        return any(d in data_names for d in _depends(self.services[name]))

    def workload_env(self, name: str, target: dict[str, Any], prefect_client: bool) -> None:
        """env / secretEnv / database / redis for a service, worker or job."""
        entries = self.env_entries(name)
        env: dict[str, str] = {}
        secret_env: dict[str, str] = {}
        for entry in entries:
            if prefect_client and (entry.name in STACK_PREFECT_ENV or entry.name.startswith(
                    _STACK_ENV_PREFIXES)) and entry.name not in (
                    "PREFECT_WORKER_QUERY_SECONDS", "PREFECT_WORKER_PREFETCH_SECONDS",
                    "EXTRA_PIP_PACKAGES"):
                self.report.note(entry.path, "the stack sets the Prefect client settings "
                                 "(PREFECT_API_URL, and the login when basic auth is on)")
                continue
            if self.use_database(entry, target) or self.use_redis(entry, target):
                continue
            value = self.rewrite_hosts(entry.value)
            if re.search(r"\b(172\.17\.0\.1|host\.docker\.internal|host-gateway)\b", value):
                self.report.note(entry.path, "points at the Docker host: ports of PostgreSQL "
                                 "and Redis are not published in the stack; use the service "
                                 "name (postgres, redis) instead")
            if _is_prefect_api_url(entry, self.names):
                value = f"http://{SERVER}:{self.server_port}{self.base_path.rstrip('/')}/api"
            if secretscan.is_secret(entry.name, entry.value, entry.subs):
                secret_env[entry.name] = self.secret_key(EnvEntry(entry.name, value, entry.subs,
                                                                  entry.path))
            else:
                env[entry.name] = value
        if env:
            target["env"] = env
        if secret_env:
            target["secretEnv"] = secret_env
        if self.touches_data(name, entries) and "database" not in target and "redis" not in target:
            target["internalNetwork"] = True

    def use_database(self, entry: EnvEntry, target: dict[str, Any]) -> bool:
        """A URL to the compose PostgreSQL becomes `database:` (derived secret URL)."""
        url = _pg_url(entry.value)
        if url is None or self.pg is None or "database" in target:
            return False
        host, user, password, db, scheme = url
        if self.names.get(host) != POSTGRES:
            return False
        self.add_database(db, user, password, entry.path)
        target["database"] = {"name": db, "env": entry.name, "scheme": scheme}
        self.report.note(entry.path, f"became `database: {{name: {db}}}`: the stack derives "
                         "this URL from the database owner's password (host postgres:5432)")
        return True

    def use_redis(self, entry: EnvEntry, target: dict[str, Any]) -> bool:
        if self.redis_source is None or "redis" in target:
            return False
        try:
            url = urlsplit(entry.value)
        except ValueError:
            return False
        if url.scheme != "redis" or self.names.get(url.hostname or "") != REDIS:
            return False
        db = url.path.strip("/")
        target["redis"] = {"env": entry.name, "db": int(db) if db.isdigit() else 0}
        self.report.note(entry.path, "became `redis: {env: ...}`: the stack derives this URL "
                         "with its Redis password")
        return True

    def add_database(self, db: str, owner: str, password: str | None, path: str) -> None:
        owner = owner.lower()
        db = db.lower()
        if db in self.databases:
            return
        key = None
        for other in self.databases.values():
            if other["owner"] == owner:
                key = other["key"]
        default = "postgresPassword" if owner == "postgres" else \
            secretscan.config_key(owner) + "DbPassword"
        if key is None:
            if password:
                key = self.book.exact(default, password)
            else:
                key = default
                self.report.note(path, f"no password for role {owner}: it is generated")
        self.databases[db] = {"owner": owner, "key": key}

    # -- volumes, ports, health --------------------------------------------------------------

    def volumes_and_files(self, name: str, target: dict[str, Any],
                          skip: Iterable[str] = ()) -> list[Volume]:
        """Named volumes and directories -> `volumes:`, small files -> `files:` (their
        secrets as `${key}` placeholders). Returns the parsed mounts."""
        svc = self.services[name]
        volumes, files, parsed = [], [], []
        for i, entry in enumerate(svc.get("volumes") or []):
            where = f"services.{name}.volumes[{i}]"
            try:
                vol = parse_volume(entry, self.project.directory)
            except UnreadableError as err:
                self.report.unmap(where, f"{err}; not imported")
                continue
            parsed.append(vol)
            if vol.target in skip:
                continue
            if vol.kind == "bind" and Path(vol.source).is_file():
                upload = self.file_upload(vol.source, vol.target, where)
                if upload is not None:
                    files.append(upload)
                    continue
            if vol.kind == "bind":
                volumes.append({"hostPath": vol.source, "mountPath": vol.target,
                                **({"readOnly": True} if vol.read_only else {})})
            else:
                volumes.append({"name": self.volume_name(vol.source, where),
                                "mountPath": vol.target,
                                **({"readOnly": True} if vol.read_only else {})})
        files += self.compose_secrets_and_configs(name)
        if volumes:
            target["volumes"] = volumes
        if files:
            target["files"] = files
        return parsed

    def volume_name(self, source: str, where: str) -> str:
        top = (self.project.doc.get("volumes") or {}).get(source) or {}
        if top.get("external"):
            self.report.unmap(where, f"external volume `{source}`: the stack creates its own "
                              "volume (prefixed); copy the data over by hand")
        name = service_name(str(top.get("name") or source))
        if name in ("prefect-data", "postgres-data", "redis-data", "proxy-data", "proxy-config"):
            name = f"{name}-app"
        return name

    def file_upload(self, source: str, target: str, where: str) -> dict[str, str] | None:
        path = Path(source)
        if path.stat().st_size > FILE_LIMIT:
            return None
        try:
            content = path.read_text()
        except UnicodeDecodeError:
            return None
        mode = "0755" if os.access(path, os.X_OK) else "0644"
        if secretscan.whole_file_is_secret(target, content):
            key = self.book.key(path.stem, content)
            self.report.note(where, f"file content is a secret: uploaded from config key {key}")
            return {"path": target, "content": f"${{{key}}}", "mode": mode}
        secrets = [(self.book.key(n, v), v) for n, v in secretscan.file_secrets(content)]
        if secrets:
            self.report.note(where, "secrets in this file became placeholders: " +
                             ", ".join(sorted({k for k, _ in secrets})))
        else:
            self.report.note(where, "file uploaded as `files:` content (no host bind mount)")
        return {"path": target, "content": file_template(content, secrets), "mode": mode}

    def compose_secrets_and_configs(self, name: str) -> list[dict[str, str]]:
        """Compose `secrets:` and `configs:` -> files (/run/secrets/<name>, /<name>)."""
        svc = self.services[name]
        out = []
        for kind in ("secrets", "configs"):
            top = self.project.doc.get(kind) or {}
            for i, ref in enumerate(svc.get(kind) or []):
                where = f"services.{name}.{kind}[{i}]"
                source = ref if isinstance(ref, str) else ref.get("source")
                default = f"/run/secrets/{source}" if kind == "secrets" else f"/{source}"
                target = ref.get("target", default) if isinstance(ref, dict) else default
                if not target.startswith("/"):
                    target = f"/run/secrets/{target}"
                spec = top.get(source) or {}
                if "file" in spec:
                    source_file = self.project.directory / spec["file"]
                    if not source_file.is_file():
                        raise ComposeError(f"{kind}.{source}.file: {spec['file']} does not exist")
                    content = source_file.read_text()
                elif "environment" in spec:
                    content = self.project.env.get(spec["environment"], "")
                elif "content" in spec:
                    content = str(spec["content"])
                else:
                    self.report.unmap(where, f"{kind[:-1]} `{source}` has no file, environment "
                                      "or content (external?); not imported")
                    continue
                if kind == "secrets":
                    key = self.book.key(source, content)
                    out.append({"path": target, "content": f"${{{key}}}"})
                    self.report.note(where, f"uploaded as a file from config key {key}")
                else:
                    secrets = [(self.book.key(n, v), v) for n, v in secretscan.file_secrets(content)]
                    out.append({"path": target, "content": file_template(content, secrets)})
        return out

    def ports(self, name: str) -> list[Port]:
        out = []
        svc = self.services[name]
        for i, entry in enumerate(svc.get("ports") or []):
            try:
                out.append(parse_port(entry))
            except UnreadableError as err:
                self.report.unmap(f"services.{name}.ports[{i}]", f"{err}; not published")
        return out

    def health(self, name: str, secret_env: dict[str, str]) -> dict[str, Any] | None:
        check = self.services[name].get("healthcheck")
        where = f"services.{name}.healthcheck"
        if not check or check.get("disable") in (True, "true") or "test" not in check:
            return None
        test = health_test(check["test"])
        if test is None:
            return None
        test = self.hide_secrets_in_test(test, secret_env, where)
        out: dict[str, Any] = {"command": test}
        for compose_key, key, low, high in (("interval", "intervalSeconds", 1, 3600),
                                            ("timeout", "timeoutSeconds", 1, 600),
                                            ("start_period", "startPeriodSeconds", 0, 3600)):
            if compose_key in check:
                try:
                    value = seconds(check[compose_key])
                except UnreadableError as err:
                    self.report.unmap(f"{where}.{compose_key}", str(err))
                    continue
                out[key] = min(max(value, low), high)
        retries = _number(check.get("retries"))
        if retries is not None:
            out["retries"] = min(max(int(retries), 1), 100)
        elif "retries" in check:
            self.report.unmap(f"{where}.retries", "not a number")
        for extra in sorted(set(check) - {"test", "interval", "timeout", "start_period",
                                          "retries", "disable"}):
            self.report.unmap(f"{where}.{extra}", "not supported by the stack's health check")
        return out

    def hide_secrets_in_test(self, test: list[str], secret_env: dict[str, str],
                             where: str) -> list[str]:
        """A secret in a health check command is read from the container's env instead:
        `["CMD-SHELL", "redis-cli -a \\"$REDIS_PASSWORD\\" ping"]`."""
        secrets = {var: self.book.values[key] for var, key in secret_env.items()}
        hits = {var: value for var, value in secrets.items()
                if value and any(value in part for part in test[1:])}
        for sub in secretscan.from_secret_variable(self.project.subs(f"{where}.test")):
            if sub.name not in hits and any(sub.value in part for part in test[1:]):
                secret_env[sub.name] = self.book.key(sub.name, sub.value)
                hits[sub.name] = sub.value
        if not hits:
            return test
        if test[0] == "CMD":
            script = " ".join(_shell_word(part, hits) for part in test[1:])
        else:
            script = test[1]
            for var, value in hits.items():
                script = script.replace(value, f"${{{var}}}")
        self.report.note(where, "secrets in the check now come from the container's "
                         f"environment ({', '.join(sorted(hits))})")
        return ["CMD-SHELL", script]

    def resources(self, name: str) -> dict[str, Any]:
        svc = self.services[name]
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        out: dict[str, Any] = {}
        memory = limits.get("memory", svc.get("mem_limit"))
        cpus = limits.get("cpus", svc.get("cpus"))
        try:
            if memory is not None:
                out["memoryMb"] = max(16, megabytes(memory))
            if cpus is not None:
                out["cpus"] = float(cpus)
        except (UnreadableError, ValueError) as err:
            self.report.unmap(f"services.{name}.deploy.resources", str(err))
        return out

    def replicas(self, name: str) -> int | None:
        deploy = self.services[name].get("deploy") or {}
        value = deploy.get("replicas", self.services[name].get("scale"))
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            self.report.unmap(f"services.{name}.deploy.replicas", "not a number")
            return None

    def depends_on(self, name: str, implied: Iterable[str] = ()) -> list[str]:
        out = []
        for dep, cond in _depends(self.services[name]).items():
            where = f"services.{name}.depends_on.{dep}"
            if dep in self.skipped:
                self.report.note(where, "dependency not imported (inactive profile)")
                continue
            role = self.roles.get(dep)
            target = self.names.get(dep, dep)
            if role in ("caddy", "traefik"):
                self.report.note(where, "the proxy starts after the services it routes to")
                continue
            if target in implied:
                continue
            if role == "worker":
                self.report.unmap(where, "waiting for a worker is not supported")
                continue
            if cond.get("condition") == "service_started":
                self.report.note(where, "service_started: the stack waits until it is healthy")
            if target not in out:
                out.append(target)
        return out

    def unknown_keys(self, name: str, handled: set[str], role: str = "") -> None:
        """Report every key of a compose service the mapping for its kind did not use."""
        svc = self.services[name]
        what = f" for a {role}" if role else ""
        for key in sorted(set(svc) - handled - set(STACK_KEYS) - {"build", "labels"}):
            if not key.startswith("x-"):
                self.report.unmap(f"services.{name}.{key}", f"no stack equivalent{what}; "
                                  "not imported")
        if "build" in svc:
            self.report.unmap(f"services.{name}.build", "the stack deploys images only: build "
                              "and push the image, then set its reference"
                              + ("" if svc.get("image") else " (no `image:` given)"))
        for key, why in STACK_KEYS.items():
            if key in svc:
                self.report.note(f"services.{name}.{key}", why)
        labels = {k: v for k, v in _labels(svc).items() if not k.startswith("traefik.")}
        if labels:
            self.report.unmap(f"services.{name}.labels", f"labels ({', '.join(sorted(labels))}) "
                              "are not imported")
        if "deploy" in handled:
            deploy = svc.get("deploy") or {}
            for key in sorted(set(deploy) - {"replicas", "resources"}):
                self.report.unmap(f"services.{name}.deploy.{key}", "not imported")
            for key in sorted(set(deploy.get("resources") or {}) - {"limits"}):
                self.report.unmap(f"services.{name}.deploy.resources.{key}", "only limits "
                                  "are imported")

    # -- sections ------------------------------------------------------------------------

    def image(self, name: str, default: str, what: str) -> str:
        image = str(self.services[name].get("image") or "")
        where = f"services.{name}.image"
        if not image:
            return default
        if not is_pinned(image):
            self.report.note(where, f"`{image}` is not pinned; the stack's {what} image "
                             f"{default} is used")
            return default
        if is_floating_major(image):
            self.report.note(where, f"`{image}` is a moving tag: kept, but production stacks "
                             f"need an exact version (e.g. {default})")
        return image

    def import_proxy(self) -> None:
        name = next((n for n, r in self.roles.items() if r in ("caddy", "traefik")), None)
        if name is None:
            return
        self.proxy_source = name
        svc = self.services[name]
        if self.roles[name] == "caddy":
            caddyfile = self.caddyfile_path(name)
            if caddyfile is None:
                self.report.unmap(f"services.{name}", "Caddy without a bind-mounted Caddyfile; "
                                  "no routes imported")
                self.proxy = ProxyImport(kind="caddy")
                return
            env = {e.name: e.value for e in self.env_entries(name)}
            try:
                self.proxy = caddy_import(adapt_caddyfile(caddyfile, env),
                                          f"services.{name}.volumes (Caddyfile)")
            except ProxyImportError as err:
                raise ComposeError(f"services.{name}: {err}") from None
        else:
            static = traefik_static(command_list(svc.get("command") or []))
            self.proxy = traefik_import(static, self.services, name)
            for key in sorted(static):
                if not key.startswith(("entrypoints.", "providers.", "certificatesresolvers.",
                                       "api", "ping", "log", "accesslog", "global.")):
                    self.report.unmap(f"services.{name}.command", f"--{key} not imported")
        for path, why in self.proxy.unmapped:
            self.report.unmap(path, why)
        for path, what in self.proxy.notes:
            self.report.note(path, what)
        for route in self.proxy.routes:
            if self.roles.get(route.host) == "server" or self.names.get(route.host) == SERVER:
                self.base_path = route.prefix
                if route.strip:
                    self.report.note(route.source, "Prefect's route is not stripped: the stack "
                                     "serves Prefect under its base path (server.basePath)")
                break
        else:
            self.base_path = "/prefect"
            self.report.note(f"services.{name}", "Prefect was not behind the proxy; the "
                             "stack also serves it there, at /prefect (server.basePath)")

    def caddyfile_path(self, name: str) -> Path | None:
        cmd = command_list(self.services[name].get("command") or [])
        config_target = cmd[cmd.index("--config") + 1] if "--config" in cmd[:-1] else \
            "/etc/caddy/Caddyfile"
        for entry in self.services[name].get("volumes") or []:
            try:
                vol = parse_volume(entry, self.project.directory)
            except UnreadableError:
                continue
            if vol.kind != "bind":
                continue
            if vol.target == config_target and Path(vol.source).is_file():
                return Path(vol.source)
            inside = Path(vol.source) / Path(config_target).name
            if config_target.startswith(vol.target.rstrip("/") + "/") and inside.is_file():
                return inside
        return None

    def import_postgres(self) -> None:
        sources = [n for n, r in self.roles.items() if r == "postgres"]
        if not sources:
            return
        self.pg = {}
        self.pg_sources = sources
        superuser_key: str | None = None
        for name in sources:
            env = {e.name: e for e in self.env_entries(name)}
            user = (env["POSTGRES_USER"].value if "POSTGRES_USER" in env else "postgres")
            db = env["POSTGRES_DB"].value if "POSTGRES_DB" in env else user
            password = env["POSTGRES_PASSWORD"].value if "POSTGRES_PASSWORD" in env else None
            self.add_database(db, user, password, f"services.{name}.environment")
            if user.lower() == "postgres":
                superuser_key = self.databases[db.lower()]["key"]
                if db.lower() == "postgres":
                    del self.databases["postgres"]  # the stack's PostgreSQL has it already
            for key in sorted(set(env) - {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}):
                self.report.unmap(env[key].path, "PostgreSQL settings other than "
                                  "POSTGRES_USER/PASSWORD/DB are not imported")
            self.pg_common(name, "PostgreSQL")
        if len(sources) > 1:
            self.report.note(", ".join(f"services.{n}" for n in sources), "merged into the "
                             "stack's one PostgreSQL: one database and owner role each")
        self.pg["image"] = self.image(sources[0], DEFAULT_POSTGRES_IMAGE, "PostgreSQL")
        if superuser_key and superuser_key != "postgresPassword":
            self.pg["superuserPasswordSecret"] = superuser_key

    def pg_common(self, name: str, what: str) -> None:
        """Ports, volumes, commands, health checks of a typed infrastructure container."""
        svc = self.services[name]
        if svc.get("ports"):
            self.report.note(f"services.{name}.ports", f"{what} stays on the internal network; "
                             "not published")
        for i, entry in enumerate(svc.get("volumes") or []):
            target = str(entry.get("target") if isinstance(entry, dict) else
                         (str(entry).split(":") + [""])[1])
            if "initdb" in target or "/usr/local/etc/redis" in target:
                self.report.unmap(f"services.{name}.volumes[{i}]", "init scripts and config "
                                  "files are not imported: databases and roles come from "
                                  "database.postgres.databases")
            else:
                self.report.note(f"services.{name}.volumes[{i}]", f"{what} data lives on the "
                                 "stack's own volume")
        if svc.get("healthcheck"):
            self.report.note(f"services.{name}.healthcheck", f"the stack's own {what} check")
        handled = INFRA_KEYS | ({"command"} if what == "Redis" else set())
        self.unknown_keys(name, handled, what)

    def import_redis(self) -> None:
        name = self.redis_source
        if name is None:
            return
        svc = self.services[name]
        redis: dict[str, Any] = {"enabled": True,
                                 "image": self.image(name, DEFAULT_REDIS_IMAGE, "Redis")}
        cmd = command_list(svc.get("command") or [])
        password = None
        if "--requirepass" in cmd[:-1]:
            password = cmd[cmd.index("--requirepass") + 1]
        env = {e.name: e.value for e in self.env_entries(name)}
        password = password or env.get("REDIS_PASSWORD")
        if password:
            redis["passwordSecret"] = self.book.exact("redisPassword", password)
        else:
            self.report.note(f"services.{name}", "Redis had no password; the stack's Redis "
                             "always has one (generated)")
        has_volume = any(":/data" in str(v) or (isinstance(v, dict) and v.get("target") == "/data")
                         for v in svc.get("volumes") or [])
        aof = cmd[cmd.index("--appendonly") + 1] if "--appendonly" in cmd[:-1] else None
        redis["persistence"] = aof == "yes" or (aof is None and has_volume)
        rest = [a for i, a in enumerate(cmd) if a not in ("redis-server", "--requirepass",
                "--appendonly") and (i == 0 or cmd[i - 1] not in ("--requirepass", "--appendonly"))]
        if rest:
            self.report.unmap(f"services.{name}.command", "Redis options other than "
                              "--requirepass/--appendonly are not imported")
        self.pg_common(name, "Redis")
        self.cfg["redis"] = redis

    def import_server(self) -> None:
        names = [n for n, r in self.roles.items() if r == "server"]
        if not names:
            self.report.unmap("services", "no Prefect server (`prefect server start`) found; "
                              "the stack runs its own with defaults")
            return
        name = names[0]
        svc = self.services[name]
        server: dict[str, Any] = {"image": self.image(name, DEFAULT_PREFECT_IMAGE, "Prefect")}
        env = {e.name: e for e in self.env_entries(name)}
        cmd = command_list(svc.get("command") or [])
        if "--port" in cmd[:-1] and cmd[cmd.index("--port") + 1].isdigit():
            self.server_port = int(cmd[cmd.index("--port") + 1])
        elif "PREFECT_SERVER_API_PORT" in env and env["PREFECT_SERVER_API_PORT"].value.isdigit():
            self.server_port = int(env["PREFECT_SERVER_API_PORT"].value)
        if self.server_port != 4200:
            server["port"] = self.server_port
        for base_var in ("PREFECT_SERVER_UI_SERVE_BASE", "PREFECT_UI_SERVE_BASE"):
            if base_var in env and self.proxy is None and env[base_var].value.startswith("/"):
                self.base_path = env[base_var].value.rstrip("/") or "/"
        server["basePath"] = self.base_path
        for port in self.ports(name):
            if port.container == self.server_port and port.host is not None:
                server["publish"] = {"hostPort": port.host, "hostIp": port.host_ip}
        if self.proxy is None:
            server["publicUrl"] = self.public_url(env, server.get("publish"))
        self.server_database(name, env)
        auth = env.get("PREFECT_SERVER_API_AUTH_STRING") or env.get("PREFECT_API_AUTH_STRING")
        if auth and ":" in auth.value:
            user, password = auth.value.split(":", 1)
            server["basicAuth"] = {"enabled": True, "username": user,
                                   "passwordSecret": self.book.exact("basicAuthPassword", password)}
        level = env.get("PREFECT_LOGGING_SERVER_LEVEL")
        if level and level.value.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"):
            server["logLevel"] = level.value.upper()
        replicas = self.replicas(name)
        if replicas and replicas > 1:
            server["replicas"] = replicas
        extra: dict[str, str] = {}
        derived = sorted(k for k in env if k in STACK_PREFECT_ENV or k.startswith(_STACK_ENV_PREFIXES))
        if derived:
            self.report.note(f"services.{name}.environment", "read, then set by the stack "
                             "itself: " + ", ".join(derived))
        for key, entry in env.items():
            if key in STACK_PREFECT_ENV or key.startswith(_STACK_ENV_PREFIXES):
                continue
            if secretscan.is_secret(key, entry.value, entry.subs):
                self.report.unmap(entry.path, "a secret in the server's environment: the "
                                  "server takes no secret env; not imported")
            else:
                extra[key] = self.rewrite_hosts(entry.value)
        if extra:
            server["env"] = extra
        if any(k.startswith(("PREFECT_MESSAGING_", "PREFECT_REDIS_MESSAGING_")) for k in env):
            self.report.note(f"services.{name}.environment", "Redis messaging settings are "
                             "derived by the stack (used with server.replicas > 1)")
        for n, r in self.roles.items():
            if r == "prefect-services":
                self.report.note(f"services.{n}", "Prefect's background services run inside "
                                 "the server (a separate services container with "
                                 "server.replicas > 1)")
        for i in range(len(svc.get("volumes") or [])):
            self.report.note(f"services.{name}.volumes[{i}]", "the server's data lives on the "
                             "stack's prefect-data volume (SQLite) or in PostgreSQL")
        if svc.get("healthcheck"):
            self.report.note(f"services.{name}.healthcheck", "the stack's own check "
                             "(<basePath>/api/health)")
        resources = self.resources(name)
        if resources:
            server["resources"] = resources
        for dep in _depends(svc):
            if self.roles.get(dep) not in ("postgres", "redis"):
                self.report.unmap(f"services.{name}.depends_on.{dep}", "the Prefect server "
                                  "waits only for its database and Redis")
        self.cfg["server"] = server
        self.unknown_keys(name, SERVER_KEYS, "Prefect server")

    def public_url(self, env: dict[str, EnvEntry], publish: dict[str, Any] | None) -> str:
        for var in ("PREFECT_UI_URL", "PREFECT_UI_API_URL", "PREFECT_SERVER_UI_API_URL"):
            entry = env.get(var)
            if entry is None or "://" not in entry.value:
                continue
            url = urlsplit(entry.value)
            if url.hostname and url.hostname != "0.0.0.0":
                return f"{url.scheme}://{url.netloc}"
            self.report.note(entry.path, "0.0.0.0 is a bind address, not a URL a browser can "
                             "use; server.publicUrl is localhost instead")
        port = publish["hostPort"] if publish else self.server_port
        host = publish["hostIp"] if publish and publish["hostIp"] not in ("0.0.0.0", "::") \
            else "localhost"
        self.report.note("server.publicUrl", f"set to http://{host}:{port}; change it to the "
                         "URL your users type")
        return f"http://{host}:{port}"

    def server_database(self, name: str, env: dict[str, EnvEntry]) -> None:
        entry = env.get("PREFECT_SERVER_DATABASE_CONNECTION_URL") or env.get(
            "PREFECT_API_DATABASE_CONNECTION_URL")
        database: dict[str, Any] = {"kind": "sqlite"}
        if entry is None:
            self.report.note(f"services.{name}", "Prefect's default SQLite database: the "
                             "stack keeps it on the prefect-data volume")
        elif entry.value.startswith("sqlite"):
            path = re.sub(r"^sqlite(\+aiosqlite)?:///", "", entry.value)
            if re.fullmatch(r"/[A-Za-z0-9._/-]+\.db", path):
                database["sqlite"] = {"path": path}
        elif (url := _pg_url(entry.value)) and self.names.get(url[0]) == POSTGRES:
            host, user, password, db, _ = url
            self.add_database(db, user, password, entry.path)
            database = {"kind": "postgres", "prefectDatabase": db.lower()}
        else:
            from_vars = secretscan.from_secret_variable(entry.subs)
            hint = from_vars[0].name if from_vars and from_vars[0].value == entry.value \
                else "externalDatabaseUrl"
            database = {"kind": "external",
                        "external": {"urlSecret": self.book.key(hint, entry.value)}}
        pool = {}
        for var, key in (("POOL_SIZE", "size"), ("MAX_OVERFLOW", "maxOverflow")):
            for prefix in ("PREFECT_SERVER_DATABASE_SQLALCHEMY_", "PREFECT_SQLALCHEMY_"):
                if prefix + var in env and env[prefix + var].value.isdigit():
                    pool[key] = int(env[prefix + var].value)
        if pool:
            database["pool"] = pool
        self.cfg["database"] = database

    def finish_database(self) -> None:
        database = self.cfg.setdefault("database", {"kind": "sqlite"})
        if self.pg is None:
            return
        if database["kind"] != "postgres":
            if not self.databases:
                return
            if database["kind"] == "sqlite":
                database["kind"] = "postgres"
                self.report.note("database.kind", "postgres: Prefect moves from SQLite into the "
                                 "apps' PostgreSQL (its own database `prefect`), as the stack "
                                 "hosts app databases only beside Prefect's")
                self.add_database("prefect", "prefect", None, "database.prefectDatabase")
                database["prefectDatabase"] = "prefect"
                database.pop("sqlite", None)
        self.pg["databases"] = [
            {"name": db, "owner": spec["owner"],
             **({"passwordSecret": spec["key"]}
                if spec["key"] != secretscan.config_key(spec["owner"]) + "DbPassword" else {})}
            for db, spec in self.databases.items()]
        database["postgres"] = self.pg

    def import_workers(self) -> None:
        workers = []
        for name, role in self.roles.items():
            if role != "worker":
                continue
            svc = self.services[name]
            where = f"services.{name}"
            cmd = command_list(svc.get("command") or [])
            opts = _cli_options(cmd)
            pool = opts.get("--pool") or opts.get("-p") or opts.get("-q") or "default"
            worker: dict[str, Any] = {"name": service_name(pool)}
            self.pool_source[worker["name"]] = name
            if "agent start" in " ".join(cmd):
                self.report.note(f"{where}.command", "a Prefect 2 agent became a Prefect 3 "
                                 "worker of a process pool named after its queue")
            kind = opts.get("--type") or opts.get("-t")
            if kind and kind != "process":
                worker["type"] = kind
            limit = _number(opts.get("--limit") or opts.get("-l"))
            if limit is not None:
                worker["concurrencyLimit"] = int(limit)
                self.report.note(f"{where}.command", "--limit became the pool's "
                                 "concurrencyLimit (for all its workers)")
            for flag in sorted(set(opts) - {"--pool", "-p", "-q", "--type", "-t", "--limit", "-l",
                                            "--with-healthcheck", "--work-queue"}):
                self.report.unmap(f"{where}.command", f"worker option {flag} not imported")
            image = str(svc.get("image") or "")
            if image and image != str(self.services_image_of_server()):
                worker["image"] = self.image(name, DEFAULT_PREFECT_IMAGE, "Prefect")
            replicas = self.replicas(name)
            if replicas is not None:
                worker["replicas"] = replicas
            env_target: dict[str, Any] = {}
            self.workload_env(name, env_target, prefect_client=True)
            entries = {e.name: e for e in self.env_entries(name)}
            for var, key in (("PREFECT_WORKER_QUERY_SECONDS", "queryIntervalSeconds"),
                             ("PREFECT_WORKER_PREFETCH_SECONDS", "prefetchSeconds")):
                if var in entries and _number(entries[var].value) is not None:
                    env_target.get("env", {}).pop(var, None)
                    worker[key] = _number(entries[var].value)
            if "EXTRA_PIP_PACKAGES" in entries:
                env_target.get("env", {}).pop("EXTRA_PIP_PACKAGES", None)
                worker["extraPipPackages"] = entries["EXTRA_PIP_PACKAGES"].value.split()
            if env_target.get("env") == {}:
                del env_target["env"]
            worker.update(env_target)
            workdir = svc.get("working_dir")
            mounts = self.volumes_and_files(name, worker, skip=[str(workdir)] if workdir else [])
            code = next((v for v in mounts if workdir and v.target == workdir and v.kind == "bind"),
                        None)
            if code is not None:
                worker["flowCode"] = {"hostPath": code.source, "mountPath": code.target,
                                      "readOnly": code.read_only}
            elif workdir:
                self.report.unmap(f"{where}.working_dir", "only a bind-mounted flow code "
                                  "directory can be the working directory")
            depends = self.depends_on(name, implied={SERVER})
            if depends:
                worker["dependsOn"] = depends
            resources = self.resources(name)
            if resources:
                worker["resources"] = resources
            if svc.get("healthcheck"):
                self.report.note(f"{where}.healthcheck", "the stack checks workers through "
                                 "their own health endpoint")
            self.unknown_keys(name, WORKER_KEYS, "worker")
            workers.append(worker)
        self.cfg["workers"] = workers

    def services_image_of_server(self) -> str | None:
        name = next((n for n, r in self.roles.items() if r == "server"), None)
        return str(self.services[name].get("image")) if name else None

    def import_jobs_and_services(self) -> None:
        jobs, services = [], []
        routes = self.routes_by_service()
        for name, role in self.roles.items():
            if role not in ("job", "service"):
                continue
            svc = self.services[name]
            where = f"services.{name}"
            image = str(svc.get("image") or "")
            if not image:
                self.report.unmap(where, "no image (build only): not imported; build and push "
                                  "the image, then add the service by hand")
                continue
            if is_floating_major(image):
                self.report.note(f"{where}.image", f"`{image}` is a moving tag: production "
                                 "stacks need an exact version")
            entry: dict[str, Any] = {"name": self.names[name], "image": image}
            command = svc.get("command")
            self.workload_env(name, entry, prefect_client=False)
            if command is not None:
                cmd = command_list(command)
                if self.command_has_secret(name, cmd):
                    self.report.unmap(f"{where}.command", "the command holds a secret; commands "
                                      "cannot: pass it through an environment variable "
                                      "(secretEnv) and set the command by hand")
                elif role == "job" or cmd:
                    entry["command"] = cmd
            self.volumes_and_files(name, entry)
            depends = self.depends_on(name)
            if depends:
                entry["dependsOn"] = depends
            if role == "job":
                self.unknown_keys(name, WORKLOAD_KEYS, "one-shot setup job")
                if "command" not in entry:
                    self.report.unmap(where, "a one-shot job needs a command; not imported")
                    continue
                jobs.append(entry)
                continue
            self.service_extras(name, entry, routes.get(name, []))
            services.append(entry)
        self.drop_dangling_depends(jobs + services + self.cfg.get("workers", []))
        if jobs:
            self.cfg["setupJobs"] = jobs
        if services:
            self.cfg["services"] = services

    def drop_dangling_depends(self, entries: list[dict[str, Any]]) -> None:
        """A dependency that was not imported cannot be waited for: drop it, say so."""
        imported = {e["name"] for e in entries if "image" in e} | {SERVER}
        imported |= {POSTGRES} if self.pg is not None else set()
        imported |= {REDIS} if self.redis_source else set()
        compose_of = {v: k for k, v in self.names.items() if k in self.services}
        compose_of.update(self.pool_source)
        for entry in entries:
            kept = []
            for target in entry.get("dependsOn", []):
                if target in imported:
                    kept.append(target)
                else:
                    self.report.unmap(f"services.{compose_of.get(entry['name'], entry['name'])}"
                                      f".depends_on.{compose_of.get(target, target)}",
                                      "that service was not imported, so nothing waits for it")
            if kept:
                entry["dependsOn"] = kept
            else:
                entry.pop("dependsOn", None)

    def command_has_secret(self, name: str, cmd: list[str]) -> bool:
        subs = [s for path, found in self.project.origins.items()
                if path.startswith(f"services.{name}.command") for s in found]
        return bool(secretscan.from_secret_variable(subs)) or any(
            secretscan.secret_shape(part) for part in cmd)

    def service_extras(self, name: str, entry: dict[str, Any], routes: list[Any]) -> None:
        svc = self.services[name]
        where = f"services.{name}"
        ports = self.ports(name)
        published = [p for p in ports if p.host is not None]
        if published:
            entry["ports"] = [{"container": p.container, "host": p.host, "hostIp": p.host_ip}
                              for p in published]
        main_port = routes[0].port if routes and routes[0].port else None
        exposed = [int(str(e).split("/")[0]) for e in svc.get("expose") or []
                   if str(e).split("/")[0].isdigit()]
        main_port = main_port or (ports[0].container if ports else None) or \
            (exposed[0] if exposed else None)
        if main_port:
            entry["port"] = main_port
        replicas = self.replicas(name)
        if replicas is not None and replicas != 1:
            if replicas == 0:
                self.report.unmap(f"{where}.deploy.replicas", "0 replicas: not imported")
            else:
                entry["replicas"] = replicas
        health = self.health(name, entry.setdefault("secretEnv", {}))
        if not entry["secretEnv"]:
            del entry["secretEnv"]
        if health is None:
            health = {"command": ["CMD-SHELL", "kill -0 1"]}
            self.report.note(f"{where}.healthcheck", "no health check in compose: the stack "
                             "requires one, so a process-alive check was used; replace it with "
                             "a real probe")
        entry["healthCheck"] = health
        if svc.get("user") is not None:
            entry["user"] = str(svc["user"])
        resources = self.resources(name)
        if resources:
            entry["resources"] = resources
        if routes:
            converted = []
            for route in routes:
                r: dict[str, Any] = {"prefix": route.prefix}
                if route.port and route.port != main_port:
                    r["port"] = route.port
                if route.strip:
                    r["stripPrefix"] = True
                if route.auth:
                    r["auth"] = True
                converted.append(r)
            if len(converted) == 1:
                entry["route"] = converted[0]
            else:
                entry["routes"] = converted
        if svc.get("working_dir"):
            self.report.unmap(f"{where}.working_dir", "services have no working directory "
                              "setting; not imported")
        self.unknown_keys(name, SERVICE_KEYS)

    def routes_by_service(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        if self.proxy is None:
            return out
        by_host = {n: n for n in self.services}
        by_host.update({str(s.get("container_name")): n for n, s in self.services.items()
                        if s.get("container_name")})
        for route in self.proxy.routes:
            compose = by_host.get(route.host)
            role = self.roles.get(compose or "")
            if role == "server":
                continue
            if compose is None or role not in ("service",):
                self.report.unmap(route.source, f"route {route.prefix} -> {route.host}: not "
                                  "an imported service; not imported")
                continue
            out.setdefault(compose, []).append(route)
        return out

    def finish_proxy(self) -> None:
        if self.proxy is None or self.proxy_source is None:
            self.cfg["proxy"] = {"kind": "none"}
            return
        name = self.proxy_source
        svc = self.services[name]
        default = DEFAULT_CADDY_IMAGE if self.proxy.kind == "caddy" else DEFAULT_TRAEFIK_IMAGE
        proxy: dict[str, Any] = {"kind": self.proxy.kind,
                                 "image": self.image(name, default, self.proxy.kind)}
        domain = (self.proxy.domain or "localhost").lower()
        if re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain):
            proxy["domain"] = domain
        else:
            self.report.unmap(f"services.{name}", f"site address `{domain}` is not a plain "
                              "domain; proxy.domain left at localhost")
        proxy["tls"] = self.proxy.tls or "internal"
        if self.proxy.acme_email:
            proxy["acme"] = {"email": self.proxy.acme_email}
        proxy["compression"] = self.proxy.compression if self.proxy.kind == "caddy" else True
        container_http = 80
        if self.proxy.kind == "traefik":
            static = traefik_static(command_list(svc.get("command") or []))
            web = [v.rsplit(":", 1)[-1] for k, v in static.items()
                   if k.startswith("entrypoints.") and k.endswith(".address")]
            container_http = int(next((p for p in web if p != "443"), "80"))
        bind = None
        for i, port in enumerate(self.ports(name)):
            if port.host is None:
                continue
            if port.container == container_http:
                proxy["httpPort"] = port.host
            elif port.container == 443:
                proxy["httpsPort"] = port.host
            else:
                self.report.unmap(f"services.{name}.ports[{i}]", f"proxy port {port.container} "
                                  "not imported (the stack publishes HTTP and HTTPS only)")
                continue
            bind = bind or port.host_ip
        if bind:
            proxy["bindAddress"] = bind
        for i, _ in enumerate(svc.get("volumes") or []):
            self.report.note(f"services.{name}.volumes[{i}]", "the stack renders the proxy "
                             "config and keeps certificates on its own volume")
        self.unknown_keys(name, PROXY_KEYS, "reverse proxy")
        if any(r.auth for r in self.proxy.routes) and "server" in self.cfg:
            auth = self.cfg["server"].setdefault("basicAuth", {})
            if not auth.get("enabled"):
                auth["enabled"] = True
                self.report.note("server.basicAuth", "routes with auth use the stack login, "
                                 "so Prefect's own login is on too (password generated)")
        self.cfg["proxy"] = proxy

    def run(self) -> None:
        self.classify()
        self.import_proxy()
        self.import_postgres()
        self.import_redis()
        self.import_server()
        self.import_workers()
        self.import_jobs_and_services()
        self.finish_database()
        self.finish_proxy()
        self.cfg.setdefault("server", {}).setdefault("basePath", self.base_path)
        name = self.project.doc.get("name") or self.project.directory.name
        prefix = re.sub(r"^[^a-z]+", "", service_name(str(name)))
        self.cfg["network"] = {"namePrefix": prefix or "prefect"}
        for name in self.skipped:
            self.report.unmap(f"services.{name}", "its profile is not active; not imported "
                              "(pass --profile to include it)")
        for key in sorted(self.project.doc):
            if key in ("services", "volumes", "secrets", "configs", "name"):
                continue
            if key == "networks":
                self.report.note("networks", "the stack's networks replace compose networks")
            elif key == "version":
                self.report.note("version", "obsolete in compose; ignored")
            elif not key.startswith("x-"):
                self.report.unmap(key, "not imported")
        if "prod" in self.stack.lower():
            self.report.note("production", "left false: with `production: true` only the "
                             "proxy publishes ports and images need exact versions")
        for var in self.project.unset:
            self.report.note(f"${{{var}}}", "variable is set in no env file: it was blank")


def file_template(content: str, secrets: list[tuple[str, str]]) -> str:
    """File content for `files:`: literal `${` escaped as `$${`, secrets as `${key}`."""
    marks: dict[str, str] = {}
    for i, (key, value) in enumerate(sorted(secrets, key=lambda kv: -len(kv[1]))):
        mark = f"\x00{i}\x00"
        marks[mark] = f"${{{key}}}"
        content = content.replace(value, mark)
    content = content.replace("${", "$${")
    for mark, placeholder in marks.items():
        content = content.replace(mark, placeholder)
    return content


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _depends(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return {k: v or {} for k, v in deps.items()}


def _labels(svc: dict[str, Any]) -> dict[str, str]:
    from components.proxyimport import labels_of

    return labels_of(svc)


def _cli_options(cmd: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    for i, arg in enumerate(cmd):
        if arg.startswith("-"):
            key, eq, value = arg.partition("=")
            if eq:
                opts[key] = value
            elif i + 1 < len(cmd) and not cmd[i + 1].startswith("-"):
                opts[key] = cmd[i + 1]
            else:
                opts[key] = ""
    return opts


def _url_host(value: str) -> str | None:
    try:
        return urlsplit(value).hostname if "://" in value else None
    except ValueError:
        return None


def _pg_url(value: str) -> tuple[str, str, str | None, str, str] | None:
    """(host, user, password, database, scheme) of a PostgreSQL URL."""
    if not re.match(r"^postgres(ql)?(\+[a-z0-9]+)?://", value):
        return None
    try:
        url = urlsplit(value)
    except ValueError:
        return None
    db = url.path.strip("/")
    if not url.hostname or not url.username or not db:
        return None
    driver = url.scheme.partition("+")[2]
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return url.hostname, url.username, url.password, db, scheme


def _is_prefect_api_url(entry: EnvEntry, names: dict[str, str]) -> bool:
    host = _url_host(entry.value)
    return entry.name == "PREFECT_API_URL" and host is not None and names.get(host) == SERVER


def _shell_word(part: str, hits: dict[str, str]) -> str:
    """One argv word as shell text, with secret values read from `$VAR`."""
    pieces = [part]
    for var, value in hits.items():
        pieces = [p for piece in pieces for p in _split_keep(piece, value, var)]
    return "".join(f'"${{{p[1]}}}"' if isinstance(p, tuple) else shlex.quote(p) if p else ""
                   for p in pieces)


def _split_keep(piece: Any, value: str, var: str) -> list[Any]:
    if isinstance(piece, tuple) or value not in piece:
        return [piece]
    out: list[Any] = []
    for i, part in enumerate(piece.split(value)):
        if i:
            out.append(("var", var))
        out.append(part)
    return out


# --- entry points -------------------------------------------------------------------------

def import_compose(compose: Path, env_files: list[Path], stack: str,
                   profiles: list[str] | None = None) -> Imported:
    """Map a compose project onto a stack config; check it with the program's loader."""
    project, skipped = load_project(compose, env_files, profiles)
    importer = _Importer(project, skipped, stack)
    importer.run()
    order = [s for s in SECTIONS if s in importer.cfg]
    config = {s: importer.cfg[s] for s in order}
    problems = loader_problems(config, importer.book.values)
    importer.report.problems = problems
    return Imported(config, dict(importer.book.values), importer.report, not problems)


def loader_problems(config: dict[str, Any], secrets: dict[str, str]) -> list[str]:
    """What the program's loader says about this config (secret values stand in)."""
    from components.errors import ConfigError
    from components.loader import load

    values = {k: json.dumps(v) for k, v in config.items()}
    values.update({k: "imported-secret" for k in secrets})
    try:
        load(values, set(secrets))
    except ConfigError as err:
        return [str(p) for p in err.problems]
    return []


def stack_yaml(imported: Imported, compose: Path, stack: str) -> str:
    header = (f"# Imported from {compose.name} by `python -m components.importer`.\n"
              f"# Secrets are not in this file: run ./set-secrets-{stack}.sh once (it stores "
              "them here, encrypted),\n# then delete it. What was not imported: "
              f"import-report-{stack}.txt.\n")
    body = {"config": {f"{PROJECT}:{k}": v for k, v in imported.config.items()}}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=100,
                                   allow_unicode=True)


def secrets_script(imported: Imported, stack: str) -> str:
    lines = ["#!/bin/sh",
             f"# Sets the secrets found by the importer on stack `{stack}`. Run it once from",
             "# anywhere (it changes to its own directory, the Pulumi project), then delete it.",
             "set -eu", 'cd "$(dirname "$0")"']
    lines += [f"pulumi config set --secret --stack {shlex.quote(stack)} {key} -- "
              f"{shlex.quote(value)}" for key, value in sorted(imported.secrets.items())]
    return "\n".join(lines) + "\n"


def write_outputs(imported: Imported, compose: Path, stack: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stack_path = out / f"Pulumi.{stack}.yaml"
    stack_path.write_text(stack_yaml(imported, compose, stack))
    script = out / f"set-secrets-{stack}.sh"
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(secrets_script(imported, stack))
    report = out / f"import-report-{stack}.txt"
    report.write_text(imported.report.text(stack))
    return [stack_path, script, report]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.importer",
                                     description="Write Pulumi.<stack>.yaml from a compose file.")
    parser.add_argument("compose", type=Path, help="docker-compose file")
    parser.add_argument("--env-file", type=Path, action="append", default=[],
                        help="env file for interpolation (repeatable; default: .env beside "
                        "the compose file)")
    parser.add_argument("--profile", action="append", default=[],
                        help="compose profile to include (repeatable)")
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=Path.cwd(), help="output directory")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.stack):
        parser.error("--stack: letters, digits, `_`, `.` and `-` only")
    try:
        imported = import_compose(args.compose.resolve(), [f.resolve() for f in args.env_file],
                                  args.stack, args.profile)
    except ComposeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = write_outputs(imported, args.compose, args.stack, args.out)
    sys.stderr.write(imported.report.text(args.stack))
    print(f"wrote {paths[0]} ({len(imported.config)} sections), {paths[1]} "
          f"({len(imported.secrets)} secrets: {', '.join(sorted(imported.secrets)) or 'none'}), "
          f"{paths[2]} ({len(imported.report.unmapped)} not imported)")
    if not imported.loads:
        print("the stack does not load yet; fix the problems listed above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
