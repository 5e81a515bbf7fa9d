"""A running live stack as a user sees it: its public origin (the proxy's, or
`server.publicUrl` without one), the proxy's CA, the stack's login, and a Prefect client.
Shared by tests/test_live.py and bench/live_benchmark.py."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import stack_file

from components.dryrun import EmittedContainer, Evaluation, emitted_containers, evaluate, unwrap
from live.runner import LIVE_VENV, ROOT, LiveError, LiveStack
from live.update import Update

FLOW_DIR = "/opt/prefect/flows"


def stack_config(stack: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A committed stack's config; `secure:` entries become known test secrets."""
    return stack_file(f"Pulumi.{stack}.yaml")


# Monitoring as the live prod stack runs it (Grafana by its stand-in), with a 2 s scrape
# instead of 30 s, so a metric moves within a test's patience.
LIVE_MONITORING = {"enabled": True, "prometheus": {"scrapeIntervalSeconds": 2}}


def prod_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """The only changes to Pulumi.prod.yaml: a proxy this machine can serve (localhost, Caddy's
    internal CA, 127.0.0.1) and flow code for the workers (prod ships none of its own)."""
    workers = [{**w, "flowCode": {"hostPath": "./flows", "mountPath": FLOW_DIR}}
               for w in config["workers"]]
    proxy = {k: v for k, v in config["proxy"].items() if k != "acme"}
    return {"proxy": {**proxy, "domain": "localhost", "tls": "internal", "bindAddress": "127.0.0.1"},
            "workers": workers}


def evaluated(stack: str, overrides: dict[str, Any] | None = None,
              secrets: dict[str, str] | None = None) -> Evaluation:
    """The program run on mocks for the stack (prod as tested); an override of None drops
    that section (e.g. a stack without the app API). `secrets` are set as if with
    `pulumi config set --secret`, beside the stack file's."""
    config, stack_secrets = stack_config(stack)
    if stack == "prod":
        config.update(prod_overrides(config))
    config.update(overrides or {})
    config = {k: v for k, v in config.items() if v is not None}
    return evaluate(config, {**stack_secrets, **(secrets or {})}, stack=stack)


def emitted(stack: str, overrides: dict[str, Any] | None = None,
            secrets: dict[str, str] | None = None) -> list[EmittedContainer]:
    """What the program emits for the stack (prod as tested), secrets resolved."""
    return emitted_containers(evaluated(stack, overrides, secrets))


def stack_outputs(evaluation: Evaluation) -> dict[str, Any]:
    """The stack's outputs as `pulumi stack output` shows them (uiUrl, apiUrl, ...)."""
    return unwrap(next(o for o in evaluation.component_outputs.values() if "uiUrl" in o))


@dataclass
class Running:
    name: str
    stack: LiveStack
    containers: dict[str, EmittedContainer]
    ssl: ssl.SSLContext | None  # trusts the proxy's internal CA; None for plain http
    login: str | None  # user:password when Prefect auth is on
    client_env: dict[str, str]
    pool: str
    origin: str  # scheme://host[:port] users reach (from the apiUrl output)
    outputs: dict[str, Any]  # uiUrl, apiUrl, ... as `pulumi stack output` shows them

    def container(self, service: str) -> EmittedContainer:
        return next(c for c in self.containers.values() if service in c.aliases)

    def update(self, overrides: dict[str, Any] | None = None,
               secrets: dict[str, str] | None = None) -> Update:
        """A second `pulumi up` with this config (LiveStack.update); clients then use the
        stack's new login, as a user would after reading the `login` output again."""
        containers = emitted_containers(evaluated(self.name, overrides, secrets))
        change = self.stack.update(containers)
        self.containers = {c.name: c for c in containers}
        self.login = self.container("prefect-server").env.get("PREFECT_SERVER_API_AUTH_STRING")
        self.client_env.pop("PREFECT_API_AUTH_STRING", None)
        if self.login:
            self.client_env["PREFECT_API_AUTH_STRING"] = self.login
        return change

    def get(self, path: str, auth: str | None = "stack", method: str = "GET",
            body: bytes | None = None) -> tuple[int, bytes]:
        """One request to the stack's public origin, as a browser would send it (no
        redirects followed)."""
        request = urllib.request.Request(self.origin + path, method=method, data=body)
        credentials = self.login if auth == "stack" else auth
        if credentials:
            request.add_header("Authorization",
                               "Basic " + base64.b64encode(credentials.encode()).decode())
        if body is not None:
            request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ssl),
                                             _NoRedirect())
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def client(self, *args: str, timeout: float = 300) -> Any:
        """tests/live/prefect_client.py with the live Prefect, talking through the proxy."""
        result = subprocess.run([str(LIVE_VENV / "bin" / "python"),
                                 str(ROOT / "tests" / "live" / "prefect_client.py"), *args],
                                env=self.client_env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise LiveError(f"prefect client {args} failed:\n{result.stderr[-3000:]}\n"
                            f"{self.stack.logs()}")
        return json.loads(result.stdout.strip().splitlines()[-1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@contextmanager
def running_stack(name: str, workdir: Path, overrides: dict[str, Any] | None = None,
                  secrets: dict[str, str] | None = None) -> Iterator[Running]:
    """Start the stack's emitted containers; stop all of them on exit, whatever happened.
    Clients use the stack's own apiUrl output, as a user would."""
    evaluation = evaluated(name, overrides, secrets)
    containers = emitted_containers(evaluation)
    outputs = stack_outputs(evaluation)
    api = urlsplit(outputs["apiUrl"])
    stack = LiveStack(containers, workdir)
    try:
        stack.start()
        root_ca = internal_ca(stack, containers) if api.scheme == "https" else None
        self_signed = api.scheme == "https" and root_ca is None  # Traefik's default certificate
        server = next(c for c in containers if "prefect-server" in c.aliases)
        login = server.env.get("PREFECT_SERVER_API_AUTH_STRING")
        home = workdir / "client-home"
        home.mkdir(exist_ok=True)
        client_env = {"PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home),
                      "PREFECT_API_URL": outputs["apiUrl"],
                      **({"PREFECT_API_SSL_CERT_FILE": str(root_ca)} if root_ca else {}),
                      **({"PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"} if self_signed else {}),
                      **({"PREFECT_API_AUTH_STRING": login} if login else {})}
        pools = [c.command[c.command.index("--pool") + 1] for c in containers
                 if c.command and "worker" in c.command]
        context = ssl.create_default_context(cafile=str(root_ca)) if root_ca else None
        if self_signed:  # what a user of that certificate does: skip verification
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        yield Running(name, stack, {c.name: c for c in containers}, context, login, client_env,
                      pools[0] if pools else "", f"{api.scheme}://{api.netloc}", outputs)
    finally:
        stack.stop()


def internal_ca(stack: LiveStack, containers: list[EmittedContainer]) -> Path | None:
    """The root certificate of Caddy's internal CA (`tls: internal`), from its data volume;
    None for Traefik, whose `tls: internal` is its default self-signed certificate."""
    proxy = next(c for c in containers if "proxy" in c.aliases)
    if proxy.image.startswith("traefik:"):
        return None
    data = next(m.source for m in proxy.mounts if m.target == "/data")
    return stack.volume(data) / "caddy" / "pki" / "authorities" / "local" / "root.crt"
