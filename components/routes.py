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
    auth: bool = False
    # Let websocket upgrades under this path skip the proxy's basic auth. Only set where the
    # upstream authenticates the socket itself (Prefect with its own auth on): Prefect's
    # websocket client sends no Authorization header on the upgrade.
    websocket_auth_bypass_path: str | None = None
    open_paths: tuple[str, ...] = ()  # exact paths left outside auth (health checks)
    source: str = ""  # config key that declared the route, for error messages

    @property
    def is_fallback(self) -> bool:
        return self.prefix == "/"

    @property
    def name(self) -> str:
        """A stable identifier usable as a Caddy matcher or Traefik router name."""
        return self.service + ("-root" if self.is_fallback else self.prefix.replace("/", "-"))


def route_problems(routes: list[Route], reserved: dict[str, str] | None = None) -> list[Problem]:
    """Collisions and shadowing, each naming both routes.

    A prefix that is a string prefix of another (`/api` and `/api-docs`, `/api` and
    `/api/v2`) is refused: proxies disagree on how such pairs match (`handle_path /api*`
    in one reference deployment sent /api-docs to the API), so the stack never relies on it.
    `reserved` maps prefixes owned by something else (Prefect's `/api` when it is served at
    the root) to who owns them.
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
            if _overlaps(first.prefix, second.prefix):
                problems.append(
                    Problem(second.source, f"route prefix `{second.prefix}` collides with "
                            f"`{first.prefix}` from {first.source}; use prefixes where neither "
                            "starts with the other")
                )
    for prefix, owner in (reserved or {}).items():
        for route in specific:
            if _overlaps(prefix, route.prefix):
                problems.append(
                    Problem(route.source, f"route prefix `{route.prefix}` collides with "
                            f"`{prefix}` used by {owner}")
                )
    return problems


def _overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def ordered(routes: list[Route]) -> list[Route]:
    """Most specific first, the fallback last: the order both proxies evaluate in."""
    return sorted(routes, key=lambda r: (r.is_fallback, -len(r.prefix), r.prefix))
