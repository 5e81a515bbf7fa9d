"""What a Docker-shaped stack config asks for that does not exist on Kubernetes.

Each is refused with the key and what to do instead, before anything is created, rather
than silently dropped: host ports (the Ingress or a Service reaches workloads), host bind
mounts (no host to bind from: named volumes become PersistentVolumeClaims, flow code comes
from the image or a git pull step), Docker daemon and log-driver settings.
"""

from __future__ import annotations

from collections.abc import Iterator

from components import scaleout
from components.config import AcmeSettings, StackConfig
from components.errors import Problem

# IngressClasses (their charts' defaults) of controllers that ignore `nginx.ingress.kubernetes.io/`
# annotations: Traefik's own Ingress provider (traefik.ingress.kubernetes.io/ annotations and
# Middleware CRDs instead) and Caddy's ingress controller (caddy.ingress.kubernetes.io/: rewrites
# and redirects only, no response headers, no basic auth).
FOREIGN_DIALECT = {"traefik": "IngressClass traefik (Traefik's Kubernetes Ingress provider)",
                   "caddy": "IngressClass caddy (the Caddy ingress controller)"}


def problems(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.target.kind != "kubernetes":
        return
    yield from _docker_only(cfg)
    yield from _host_ports(cfg)
    yield from _host_mounts(cfg)
    yield from _ingress(cfg)
    yield from _built_images(cfg)


def _built_images(cfg: StackConfig) -> Iterator[Problem]:
    build = scaleout.image_build(cfg)
    if build is None or cfg.target.kubernetes.image_registry is not None:
        return
    args = " ".join(f"--build-arg {k}={v}" for k, v in build.args)
    yield Problem("target.kubernetes.imageRegistry", f"server.replicas {cfg.server.replicas} "
                  f"runs the image {build.tag}, which this stack builds; a cluster cannot pull "
                  "an image built on this machine: push it to a registry the cluster reads "
                  f"(docker build -t REGISTRY/{build.tag} {args} {build.context} && docker "
                  f"push REGISTRY/{build.tag}) and set target.kubernetes.imageRegistry: REGISTRY")


def _docker_only(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.docker.host is not None:
        yield Problem("docker.host", "has no meaning with target.kind kubernetes; choose the "
                      "cluster with target.kubernetes.kubeconfig and target.kubernetes.context")
    if "logging" in cfg.model_fields_set:
        yield Problem("logging", "Docker log-driver settings have no meaning with target.kind "
                      "kubernetes: the kubelet rotates container logs "
                      "(containerLogMaxSize, containerLogMaxFiles); remove the section")


def _host_ports(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.server.publish is not None:
        yield Problem("server.publish", "host ports do not exist on Kubernetes; reach Prefect "
                      "through the Ingress (proxy.kind caddy or traefik) or with `kubectl "
                      "port-forward svc/prefect-server 4200`")
    for i, svc in enumerate(cfg.services):
        if svc.ports:
            yield Problem(f"services[{i}].ports", "host ports do not exist on Kubernetes; give "
                          "the service a route (served by the Ingress) or use `kubectl "
                          "port-forward`")
    for key in ("bind_address", "http_port", "https_port"):
        if key in cfg.proxy.model_fields_set:
            camel = {"bind_address": "bindAddress", "http_port": "httpPort",
                     "https_port": "httpsPort"}[key]
            yield Problem(f"proxy.{camel}", "the ingress controller owns the listening "
                          "addresses and ports on Kubernetes; remove the key")


def _host_mounts(cfg: StackConfig) -> Iterator[Problem]:
    owners = [(f"workers[{i}]", p) for i, p in enumerate(cfg.workers)]
    owners += [(f"services[{i}]", s) for i, s in enumerate(cfg.services)]
    owners += [(f"setupJobs[{i}]", j) for i, j in enumerate(cfg.setup_jobs)]
    for i, pool in enumerate(cfg.workers):
        if pool.flow_code is not None:
            yield Problem(f"workers[{i}].flowCode", "host bind mounts do not exist on "
                          "Kubernetes; build the flow code into the worker image "
                          f"(workers[{i}].image) or pull it from git in the deployment's "
                          "pull step (prefect.deployments.steps.git_clone)")
    for path, owner in owners:
        volumes = getattr(owner, "volumes", [])
        for j, vol in enumerate(volumes):
            if vol.host_path is not None:
                yield Problem(f"{path}.volumes[{j}].hostPath", "host bind mounts do not exist "
                              "on Kubernetes; use a named volume (`name:`, a "
                              "PersistentVolumeClaim) or build the files into the image")
        replicas = getattr(owner, "replicas", 1)
        if replicas > 1 and any(v.name for v in volumes):
            yield Problem(f"{path}.replicas", f"{replicas} replicas cannot share a named volume "
                          "on Kubernetes (a ReadWriteOnce claim attaches to one node); use 1 "
                          "replica or keep the data in a database")


def _ingress(cfg: StackConfig) -> Iterator[Problem]:
    proxy = cfg.proxy
    if proxy.kind == "none":
        return
    if proxy.tls == "acme" and cfg.target.kubernetes.ingress.cluster_issuer is None:
        yield Problem("target.kubernetes.ingress.clusterIssuer", "proxy.tls acme on Kubernetes "
                      "is cert-manager's job: name the ClusterIssuer (e.g. letsencrypt-prod) "
                      "that holds the ACME account")
    for key in sorted(proxy.acme.model_fields_set):  # email, staging: the ClusterIssuer's
        yield Problem(f"proxy.acme.{AcmeSettings.model_fields[key].alias}", "the ACME "
                      "account and server are the ClusterIssuer's on Kubernetes (cert-manager: "
                      "spec.acme.email, spec.acme.server), not the stack's; remove the key")
    if proxy.traefik.dashboard:
        yield Problem("proxy.traefik.dashboard", "the proxy's dashboard does not exist on "
                      "Kubernetes (the ingress controller serves the routes); remove the key")
    controller = FOREIGN_DIALECT.get(cfg.target.kubernetes.ingress.class_name)
    if controller is not None:
        yield Problem("target.kubernetes.ingress.className", f"{controller} reads none of the "
                      "ingress-nginx annotations the routes are written with (security headers "
                      "and Prefect's Content-Security-Policy, basic auth, prefix stripping), so "
                      "it would serve them without; use ingress-nginx or Traefik's "
                      "kubernetesIngressNginx provider and name their IngressClass (e.g. nginx)")
