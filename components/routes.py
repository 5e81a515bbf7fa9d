"""The route model shared by every proxy: who is reachable under which public path.

Pure data and checks; the Caddy and Traefik renderers only translate it.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.errors import Problem


@dataclass(frozen=True)
class Route:
    """One public path prefix served by one upstream service."""

    prefix: str  # "/prefect"; "/" is the fallback for everything unmatched
    service: str  # upstream DNS name on the Docker network
    port: int
    strip_prefix: bool = False
    auth: bool = False  # the proxy asks for the stack login
    source: str = ""  # config key that declared the route, for error messages
    # Replicas as separate upstreams (host names), balanced, health-checked on `health_path`
    # and retried by the proxy; empty: the one `service` name.
    upstreams: tuple[str, ...] = ()
    health_path: str | None = None
    content_security_policy: str | None = None  # sent with every response of the route

    @property
    def is_fallback(self) -> bool:
        return self.prefix == "/"

    @property
    def name(self) -> str:
        """A stable identifier usable as a Caddy matcher or Traefik router name."""
        return self.service + ("-root" if self.is_fallback else self.prefix.replace("/", "-"))


def route_problems(routes: list[Route], reserved: dict[str, str] | None = None) -> list[Problem]:
    """Collisions, each naming both routes.

    Prefixes match whole path segments (`/minio` serves `/minio` and `/minio/...`, never
    `/minio-console`), and the most specific prefix wins (`/api/v2` before `/api`), so
    overlapping prefixes are fine; only the same prefix twice is ambiguous. `reserved` maps
    paths owned by something else (Prefect's `/api` when it is served at the root) to who
    owns them: no route may take them or anything under them.
    """
    problems: list[Problem] = []
    fallbacks = [r for r in routes if r.is_fallback]
    for extra in fallbacks[1:]:
        problems.append(
            Problem(extra.source, f"route `/` collides with `/` from {fallbacks[0].source}; "
                    "only one service can be the fallback")
        )
    specific = [r for r in routes if not r.is_fallback]
    for i, first in enumerate(specific):
        for second in specific[i + 1:]:
            if first.prefix == second.prefix:
                problems.append(
                    Problem(second.source, f"route prefix `{second.prefix}` is already routed "
                            f"to {first.service} by {first.source}; give each route its own "
                            "prefix")
                )
    for prefix, owner in (reserved or {}).items():
        for route in specific:
            if within(route.prefix, prefix):
                problems.append(
                    Problem(route.source, f"route prefix `{route.prefix}` collides with "
                            f"`{prefix}` used by {owner}")
                )
    return problems


def within(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or below it, segment by segment (`/api/v2` is within `/api`,
    `/api-docs` is not)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def ordered(routes: list[Route]) -> list[Route]:
    """Most specific first, the fallback last: the order both proxies evaluate in."""
    return sorted(routes, key=lambda r: (r.is_fallback, -len(r.prefix), r.prefix))
