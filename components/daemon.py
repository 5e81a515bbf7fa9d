"""Where the Docker daemon runs, as the docker provider will decide it.

terraform-provider-docker v4.5.0 (`internal/provider/provider.go`, under pulumi-docker 5.x):
`host` comes from the provider config (our `docker.host`), else from `DOCKER_HOST`, else the
local socket; a `context` (default `DOCKER_CONTEXT`) overrides the host. A bind mount's
source path is a path on the daemon's machine, so a `./relative` path (resolved where
`pulumi up` runs) is only right when that daemon runs here.
"""

from __future__ import annotations

from collections.abc import Mapping

LOCAL_SCHEMES = ("unix://", "npipe://")


def remote_daemon(host: str | None, environ: Mapping[str, str]) -> str | None:
    """Why the daemon may be on another machine (the setting and its value), or None when
    it is this machine's socket."""
    context = environ.get("DOCKER_CONTEXT", "")
    if context not in ("", "default"):
        return f"DOCKER_CONTEXT is `{context}` (a Docker context may point at another machine)"
    if host is not None:
        setting, address = "docker.host", host
    elif environ.get("DOCKER_HOST"):
        setting, address = "DOCKER_HOST", environ["DOCKER_HOST"]
    else:
        return None
    if address.startswith(LOCAL_SCHEMES):
        return None
    return f"{setting} is `{address}`, a daemon on another machine"
