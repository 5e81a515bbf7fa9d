"""The Pulumi program: read config, refuse bad input cleanly, deploy, export outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from components.docker.stack import PrefectStack
from components.errors import ConfigError
from components.loader import load, read_pulumi_config

if TYPE_CHECKING:
    from components.kubernetes.stack import KubernetesStack


def run() -> PrefectStack | KubernetesStack:
    try:
        loaded = load(*read_pulumi_config())
    except ConfigError as err:
        # RunError prints the message alone: no traceback, and nothing was registered.
        raise pulumi.RunError(str(err)) from None
    if loaded.config.target.kind == "kubernetes":
        # Imported here: pulumi_kubernetes's type modules take about a second to import, and
        # a Docker stack (every deploy, render and test evaluation of one) never uses them.
        from components.kubernetes.stack import KubernetesStack

        stack: PrefectStack | KubernetesStack = KubernetesStack("prefect", loaded)
    else:
        stack = PrefectStack("prefect", loaded)
    pulumi.export("uiUrl", stack.ui_url)
    pulumi.export("apiUrl", stack.api_url)
    pulumi.export("internalApiUrl", stack.internal_api_url)
    pulumi.export("workPools", stack.work_pools)
    if stack.login is not None:
        pulumi.export("login", stack.login)
    return stack
