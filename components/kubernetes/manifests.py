"""A `StackPlan` as Kubernetes objects: plain dicts, no Pulumi, no cluster.

Every object is the JSON Kubernetes accepts, except two kinds of leaves the Pulumi layer
fills in: `SecretText` (a secret value, only ever inside a Secret's `stringData`) and `Ref`
(the generated name of a Secret or ConfigMap: they are auto-named, so a changed value is a
new object and the pods that use it roll). Security defaults follow prefect-helm: non-root
where the image allows, read-only root filesystem with `emptyDir` scratch space, no
privilege escalation, all capabilities dropped, seccomp RuntimeDefault, no service-account
token. Checkov findings that remain are justified in `checkov.io/skip` annotations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from components import plan as prefect
from components.config import StackConfig
from components.kubernetes import headers as response_headers
from components.routes import Route, ordered
from components.spec import Probe, SecretText, ServiceSpec, StackPlan

PART_OF = "prefect-stack"
ZONE = "prefect-stack/zone"
DATA_ACCESS = "prefect-stack/data-access"
SERVICE_ACCOUNT = "prefect-stack"
DEFAULT_CPU_LIMIT = 1.0  # cores, when neither the workload nor resources.defaults sets cpus
JOB_DEADLINE_SECONDS = 900
HIGH_UID = 10000  # checkov CKV_K8S_40: uids below may collide with the node's users
NGINX = "nginx.ingress.kubernetes.io/"

# Checkov findings that do not apply, with the reason (applied as checkov.io/skip annotations).
ALWAYS_SKIPPED = {
    "CKV_K8S_43": "images are pinned to exact version tags (checked before deploying and by "
                  "the policy pack); digests would need a registry lookup at plan time",
    "CKV_K8S_15": "pinned tags never move, so IfNotPresent pulls the same image as Always",
    "CKV_K8S_35": "secrets reach the process as environment variables, which is how Prefect "
                  "and the images read their settings",
}
LOW_UID_SKIP = ("CKV_K8S_40", "the uid the image is built for (prefect-helm's 1001, postgres "
                "70, redis 999) or the config's `user`; another uid would not own its files")
NON_ROOT_SKIP = ("CKV_K8S_23", "the image's own user: set `user` in the config to run it "
                 "non-root (not known for this image)")
READ_WRITE_ROOT_SKIP = ("CKV_K8S_22", "EXTRA_PIP_PACKAGES installs into the image at start; "
                        "bake the packages into the image to run read-only")


@dataclass(frozen=True)
class Ref:
    """The generated name of another object of the stack (by its key)."""

    key: str


@dataclass(frozen=True)
class Manifest:
    key: str  # unique within the stack; also the Pulumi resource name
    body: dict[str, Any]  # the object, with SecretText and Ref leaves
    group: str = "stack"  # the component it belongs to (spec.group)
    component: str = "Stack"  # the ComponentResource kind it is created under
    depends_on: tuple[str, ...] = ()  # keys that must exist (and be ready) first
    auto_named: bool = False  # metadata.name is generated (Secrets, ConfigMaps, Jobs)
    retain: bool = False  # kept when the stack is destroyed (production data)

    @property
    def kind(self) -> str:
        return str(self.body["kind"])


@dataclass
class Context:
    plan: StackPlan
    cfg: StackConfig
    namespace: str
    out: list[Manifest] = field(default_factory=list)
    objects_of: dict[str, list[str]] = field(default_factory=dict)  # spec name -> keys

    def add(self, manifest: Manifest, owner: str | None = None) -> None:
        if self.cfg.target.kubernetes.create_namespace and manifest.kind != "Namespace":
            manifest = replace(manifest, depends_on=("namespace", *manifest.depends_on))
        self.out.append(manifest)
        if owner is not None:
            self.objects_of.setdefault(owner, []).append(manifest.key)

    def meta(self, name: str | None, labels: dict[str, str] | None = None,
             annotations: dict[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"namespace": self.namespace,
                                "labels": {"app.kubernetes.io/part-of": PART_OF,
                                           "app.kubernetes.io/instance": self.plan.prefix,
                                           **(labels or {})}}
        if name is not None:
            meta["name"] = name
        if annotations:
            meta["annotations"] = annotations
        return meta


def namespace_of(cfg: StackConfig) -> str:
    return cfg.target.kubernetes.namespace or cfg.network.name_prefix


def manifests(plan: StackPlan, cfg: StackConfig) -> list[Manifest]:
    """Every object of the stack, in an order they can be created in."""
    ctx = Context(plan, cfg, namespace_of(cfg))
    settings = cfg.target.kubernetes
    if settings.create_namespace:
        ctx.add(Manifest("namespace", component="StackNamespace", group="namespace", body={
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ctx.namespace, "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                # Images of unknown users may run as root; "restricted" is reported, not enforced.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted"}}}))
    ctx.add(Manifest("service-account", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": ctx.meta(SERVICE_ACCOUNT),
        "automountServiceAccountToken": False}, group="namespace", component="StackNamespace"))
    for spec in plan.services:
        if spec.component == "ReverseProxy":
            continue  # the Ingress (and its controller) is the proxy on Kubernetes
        workload(ctx, spec)
    network_policies(ctx)
    ingresses(ctx)
    return ctx.out


# --- one ServiceSpec -------------------------------------------------------------------------

def selector(spec: ServiceSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/component": spec.group
            or spec.name}


def pod_labels(spec: ServiceSpec) -> dict[str, str]:
    return {**selector(spec), ZONE: spec.zone,
            DATA_ACCESS: "true" if spec.reaches_data else "false"}


def workload(ctx: Context, spec: ServiceSpec) -> None:
    env_secret = files_objects = None
    secret_env = {k: v for k, v in spec.env.items() if isinstance(v, SecretText)}
    if secret_env:
        env_secret = f"{spec.name}-env"
        ctx.add(Manifest(env_secret, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": ctx.meta(None, selector(spec)),
            "stringData": dict(sorted(secret_env.items()))},
            group=spec.group, component=spec.component, auto_named=True), spec.name)
    if spec.uploads:
        files_objects = file_objects(ctx, spec)
    claims = [m for m in spec.mounts if m.volume]
    stateful = spec.name == prefect.POSTGRES and not spec.one_shot
    if not stateful:
        for mount in claims:
            ctx.add(Manifest(f"volume-{mount.volume}", {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": ctx.meta(mount.volume, selector(spec)),
                "spec": claim_spec(ctx, ctx.cfg.target.kubernetes.storage.volume_size)},
                group=spec.group, component=spec.component,
                retain=ctx.plan.production), spec.name)
    template = {"metadata": {"labels": pod_labels(spec)},
                "spec": pod_spec(ctx, spec, env_secret, files_objects, stateful)}
    depends = tuple(key for name in spec.depends_on for key in ctx.objects_of.get(name, ()))
    depends += tuple(ctx.objects_of.get(spec.name, ()))
    annotations = checkov_skips(spec)
    meta = ctx.meta(spec.name, selector(spec), annotations)
    if spec.one_shot:
        body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {**meta},
                "spec": {"backoffLimit": 2, "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
                         "template": {**template, "spec": {**template["spec"],
                                                           "restartPolicy": "Never"}}}}
        del body["metadata"]["name"]  # auto-named: a changed job is a new job, run again
        # A job that failed is replaced (run again) by the next `pulumi up`, not awaited again.
        body["metadata"]["annotations"] = {**annotations, "pulumi.com/replaceUnready": "true"}
        ctx.add(Manifest(f"job-{spec.name}", body, spec.group, spec.component, depends,
                         auto_named=True), spec.name)
        return
    if stateful:
        body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": {
            "serviceName": spec.name, "replicas": spec.replicas,
            "selector": {"matchLabels": selector(spec)}, "template": template,
            "volumeClaimTemplates": [{
                "metadata": {"name": m.volume, "labels": selector(spec)},
                "spec": claim_spec(ctx, ctx.cfg.target.kubernetes.storage.database_size)}
                for m in claims]}}
        ctx.add(Manifest(f"statefulset-{spec.name}", body, spec.group, spec.component, depends,
                         retain=ctx.plan.production), spec.name)
    else:
        strategy = {"type": "Recreate"} if claims else {
            "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": spec.replicas, "revisionHistoryLimit": 10, "strategy": strategy,
            "selector": {"matchLabels": selector(spec)}, "template": template}}
        ctx.add(Manifest(f"deployment-{spec.name}", body, spec.group, spec.component, depends),
                spec.name)
    ports = ctx.plan.exposed_ports(spec.name)
    if ports:
        service_spec: dict[str, Any] = {
            "selector": selector(spec),
            "ports": [{"name": f"port-{p}", "port": p, "targetPort": p, "protocol": "TCP"}
                      for p in ports]}
        if stateful:
            service_spec["clusterIP"] = "None"  # the StatefulSet's governing service
        else:
            service_spec["type"] = "ClusterIP"
        ctx.add(Manifest(f"service-{spec.name}", {
            "apiVersion": "v1", "kind": "Service", "metadata": ctx.meta(spec.name, selector(spec)),
            "spec": service_spec}, spec.group, spec.component), spec.name)
    if spec.replicas > 1:
        ctx.add(Manifest(f"pdb-{spec.name}", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": ctx.meta(spec.name, selector(spec)),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec)}}},
            spec.group, spec.component), spec.name)


def claim_spec(ctx: Context, size: str) -> dict[str, Any]:
    out: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                           "resources": {"requests": {"storage": size}}}
    storage_class = ctx.cfg.target.kubernetes.storage.class_name
    if storage_class:
        out["storageClassName"] = storage_class
    return out


def file_objects(ctx: Context, spec: ServiceSpec) -> dict[str, str]:
    """Uploaded files as one ConfigMap (plain) and one Secret (with secrets): upload index ->
    the key of the object holding it."""
    plain = {f"file{i}": u.content for i, u in enumerate(spec.uploads) if isinstance(u.content, str)}
    secret = {f"file{i}": u.content for i, u in enumerate(spec.uploads)
              if isinstance(u.content, SecretText)}
    holder: dict[str, str] = {}
    if plain:
        key = f"{spec.name}-files"
        ctx.add(Manifest(key, {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": ctx.meta(None, selector(spec)), "data": plain},
                         spec.group, spec.component, auto_named=True), spec.name)
        holder.update(dict.fromkeys(plain, key))
    if secret:
        key = f"{spec.name}-secret-files"
        ctx.add(Manifest(key, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                               "metadata": ctx.meta(None, selector(spec)), "stringData": secret},
                         spec.group, spec.component, auto_named=True), spec.name)
        holder.update(dict.fromkeys(secret, key))
    return holder


def checkov_skips(spec: ServiceSpec) -> dict[str, str]:
    skips = dict(ALWAYS_SKIPPED)
    if spec.run_as is None:
        skips[NON_ROOT_SKIP[0]] = NON_ROOT_SKIP[1]
    if spec.run_as is None or spec.run_as < HIGH_UID:
        skips[LOW_UID_SKIP[0]] = LOW_UID_SKIP[1]
    if not read_only_root(spec):
        skips[READ_WRITE_ROOT_SKIP[0]] = READ_WRITE_ROOT_SKIP[1]
    return {f"checkov.io/skip{i}": f"{check}={reason}"
            for i, (check, reason) in enumerate(sorted(skips.items()), start=1)}


def read_only_root(spec: ServiceSpec) -> bool:
    return "EXTRA_PIP_PACKAGES" not in spec.env


# --- the pod ---------------------------------------------------------------------------------

def pod_spec(ctx: Context, spec: ServiceSpec, env_secret: str | None,
             files: dict[str, str] | None, stateful: bool) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if spec.scratch:
        volumes.append({"name": "scratch", "emptyDir": {}})
        mounts += [{"name": "scratch", "mountPath": d, "subPath": d.strip("/").replace("/", "-")}
                   for d in spec.scratch]
    for mount in spec.mounts:
        if mount.volume is None:
            continue  # host bind mounts are refused before planning (kubernetes.checks)
        if not stateful:
            volumes.append({"name": mount.volume,
                            "persistentVolumeClaim": {"claimName": mount.volume}})
        mounts.append({"name": mount.volume, "mountPath": mount.target,
                       "readOnly": mount.read_only})
    for holder in sorted(set((files or {}).values())):
        indexes = [i for i, u in enumerate(spec.uploads) if files and files[f"file{i}"] == holder]
        items = [{"key": f"file{i}", "path": f"file{i}",
                  "mode": 0o755 if spec.uploads[i].executable else 0o644} for i in indexes]
        source = ({"secret": {"secretName": Ref(holder), "items": items}}
                  if holder.endswith("-secret-files")
                  else {"configMap": {"name": Ref(holder), "items": items}})
        volumes.append({"name": holder, **source})
        mounts += [{"name": holder, "mountPath": spec.uploads[i].path, "subPath": f"file{i}",
                    "readOnly": True} for i in indexes]
    container: dict[str, Any] = {
        "name": spec.name, "image": image(ctx, spec.image), "imagePullPolicy": "IfNotPresent",
        "env": env(spec, env_secret), "resources": resources(ctx, spec),
        "securityContext": container_security(spec), "volumeMounts": mounts}
    if spec.command:
        container["args"] = list(spec.command)  # Docker's command replaces CMD, not ENTRYPOINT
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    ports = sorted(set(ctx.plan.exposed_ports(spec.name)) | probe_ports(spec.probe))
    if ports:
        container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    if not spec.one_shot and spec.probe is not None:
        container.update(probes(spec.probe))
    pod: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT, "automountServiceAccountToken": False,
        "enableServiceLinks": False, "securityContext": pod_security(spec),
        "terminationGracePeriodSeconds": 30, "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    return pod


def image(ctx: Context, ref: str) -> str:
    """Images the stack builds are pulled from `target.kubernetes.imageRegistry`."""
    if ref in {b.tag for b in ctx.plan.builds}:
        return f"{ctx.cfg.target.kubernetes.image_registry}/{ref}"
    return ref


def probe_ports(probe: Probe | None) -> set[int]:
    return {probe.port} if probe is not None and probe.http_path and probe.port else set()


def env(spec: ServiceSpec, env_secret: str | None) -> list[dict[str, Any]]:
    merged: dict[str, Any] = {**spec.scratch_env, **spec.env}
    out = []
    for name, value in sorted(merged.items()):
        if isinstance(value, SecretText):
            assert env_secret is not None
            out.append({"name": name, "valueFrom": {"secretKeyRef": {"name": Ref(env_secret),
                                                                     "key": name}}})
        else:
            out.append({"name": name, "value": value})
    return out


def resources(ctx: Context, spec: ServiceSpec) -> dict[str, Any]:
    """Limits as configured; memory requested in full (memory is never overcommitted),
    half the CPU limit requested (prefect-helm: 500m of 1)."""
    memory = f"{spec.memory_mb or 512}Mi"
    cpu = spec.cpus or DEFAULT_CPU_LIMIT
    return {"limits": {"memory": memory, "cpu": f"{math.ceil(cpu * 1000)}m"},
            "requests": {"memory": memory, "cpu": f"{max(10, math.ceil(cpu * 500))}m"}}


def pod_security(spec: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if spec.run_as is not None:
        gid = spec.user.split(":", 1)[1] if spec.user and ":" in spec.user else str(spec.run_as)
        out.update(runAsUser=spec.run_as, runAsNonRoot=True)
        if gid.isdigit():
            out.update(runAsGroup=int(gid), fsGroup=int(gid))
    return out


def container_security(spec: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"allowPrivilegeEscalation": False, "privileged": False,
                           "readOnlyRootFilesystem": read_only_root(spec),
                           "capabilities": {"drop": ["ALL"]}}
    if spec.run_as is not None:
        out.update(runAsUser=spec.run_as, runAsNonRoot=True)
    return out


def probes(probe: Probe) -> dict[str, Any]:
    """Liveness on the health check, readiness on the stricter one where there is one, and a
    startup probe that gives the start period before liveness counts (Docker's start_period)."""
    def handler(path: str | None) -> dict[str, Any]:
        if path is not None:
            return {"httpGet": {"path": path, "port": probe.port}}
        return {"exec": {"command": list(probe.command or ())}}

    timing = {"periodSeconds": probe.interval_s, "timeoutSeconds": probe.timeout_s,
              "failureThreshold": probe.retries}
    startup = {**timing, "failureThreshold": probe.retries + math.ceil(
        probe.start_period_s / probe.interval_s)}
    return {"livenessProbe": {**handler(probe.http_path), **timing},
            "readinessProbe": {**handler(probe.ready_path or probe.http_path), **timing},
            "startupProbe": {**handler(probe.http_path), **startup}}


# --- the network: Docker's two bridges as NetworkPolicies -----------------------------------

def network_policies(ctx: Context) -> None:
    """`app` is the namespace's pods; `data` (PostgreSQL, Redis) admits only pods that joined
    it in the plan, and its own pods talk to nothing but each other and DNS (Docker's
    internal network has no route out). Routed services admit the ingress controller."""
    def policy(name: str, spec: dict[str, Any]) -> None:
        ctx.add(Manifest(f"netpol-{name}", {"apiVersion": "networking.k8s.io/v1",
                                            "kind": "NetworkPolicy",
                                            "metadata": ctx.meta(name), "spec": spec},
                         group="networks", component="StackNetworks"))

    policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    policy("app-zone", {"podSelector": {"matchLabels": {ZONE: "app"}},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"podSelector": {"matchLabels": {ZONE: "app"}}}]}]})
    policy("data-zone", {
        "podSelector": {"matchLabels": {ZONE: "data"}}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {DATA_ACCESS: "true"}}}]}],
        "egress": [{"to": [{"podSelector": {"matchLabels": {ZONE: "data"}}}]},
                   {"to": [{"namespaceSelector": {}, "podSelector": {
                       "matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})
    routed = sorted({r.service for r in ctx.plan.routes})
    if routed:
        controller = ctx.cfg.target.kubernetes.ingress.controller_namespace
        policy("from-ingress", {
            "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name",
                                                  "operator": "In", "values": routed}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": controller}}}],
                "ports": [{"protocol": "TCP", "port": p}
                          for p in sorted({r.port for r in ctx.plan.routes})]}]})


# --- the proxy's routes as Ingresses --------------------------------------------------------

def ingress_auth(route: Route) -> bool:
    """Basic auth at the ingress, except on Prefect's route: Prefect checks its own login,
    and its websocket clients send no Authorization header on the upgrade (field notes)."""
    return route.auth and route.service != prefect.SERVER


def ingresses(ctx: Context) -> None:
    routes = ordered(list(ctx.plan.routes))
    if not routes:
        return
    cfg = ctx.cfg
    settings = cfg.target.kubernetes.ingress
    groups: dict[tuple[bool, bool, str], list[Route]] = {}
    for route in routes:
        strip = route.strip_prefix and not route.is_fallback
        policy = route.content_security_policy or ""  # its own Ingress: headers are per Ingress
        groups.setdefault((ingress_auth(route), strip, policy), []).append(route)
    if any(auth for auth, _, _ in groups):
        auth = cfg.server.basic_auth
        ctx.add(Manifest("ingress-auth", {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": ctx.meta(None),
            # ingress-nginx reads an htpasswd line; bcrypt salted per stack (spec.bcrypt_hash)
            "stringData": {"auth": SecretText(f"{auth.username}:${{{auth.password_secret}|bcrypt}}")}},
            group="proxy", component="ReverseProxy", auto_named=True))
    # Routes with a policy first: the Ingress the others moved out of exists before theirs.
    for (auth, strip, policy), members in sorted(groups.items(),
                                                 key=lambda g: (g[0][:2], not g[0][2])):
        name = "routes" + ("-auth" if auth else "") + ("-strip" if strip else "")
        moved = not policy and (auth, strip) in {key[:2] for key in groups if key[2]}
        annotations: dict[str, Any] = {}
        if auth:
            annotations.update({NGINX + "auth-type": "basic", NGINX + "auth-secret": Ref("ingress-auth"),
                                NGINX + "auth-secret-type": "auth-file",
                                NGINX + "auth-realm": "prefect-stack"})
        if strip:
            annotations.update({NGINX + "use-regex": "true", NGINX + "rewrite-target": "/$2"})
        if any(r.service == prefect.SERVER for r in members):
            # Prefect's clients hold websockets open (events, logs): nginx's 60 s default cuts them.
            annotations.update({NGINX + "proxy-read-timeout": "3600",
                                NGINX + "proxy-send-timeout": "3600"})
        spec: dict[str, Any] = {"ingressClassName": settings.class_name, "rules": [{
            "host": cfg.proxy.domain, "http": {"paths": [path(r, strip) for r in members]}}]}
        if cfg.proxy.tls != "off":
            tls: dict[str, Any] = {"hosts": [cfg.proxy.domain]}
            if settings.cluster_issuer:
                annotations["cert-manager.io/cluster-issuer"] = settings.cluster_issuer
                tls["secretName"] = f"{ctx.plan.prefix}-tls"
            spec["tls"] = [tls]
        else:
            annotations[NGINX + "ssl-redirect"] = "false"
        depends = tuple(key for r in members for key in ctx.objects_of.get(r.service, ()))
        depends += ("ingress-auth",) if auth else ()
        if moved:
            # Prefect's Ingress keeps its name; the routes that shared it move to `-apps`, created
            # after it gave their paths up (ingress-nginx's admission refuses a path defined twice).
            depends += (f"ingress-{name}",)
            name += "-apps"
        headers = response_headers.route_headers(members[0], cfg.proxy)
        if headers:
            config_map = response_headers.config_map_name(name, headers)
            ctx.add(Manifest(f"headers-{name}", {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.meta(config_map),
                "data": headers}, group="proxy", component="ReverseProxy"))
            annotations[NGINX + "custom-headers"] = f"{ctx.namespace}/{config_map}"
            depends += (f"headers-{name}",)
        ctx.add(Manifest(f"ingress-{name}", {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": ctx.meta(name, annotations=annotations),
            "spec": spec}, group="proxy", component="ReverseProxy",
            depends_on=tuple(dict.fromkeys(depends))))


def path(route: Route, strip: bool) -> dict[str, Any]:
    backend = {"service": {"name": route.service, "port": {"number": route.port}}}
    if strip:
        # /api(/|$)(.*) with rewrite-target /$2: /api/x reaches the app as /x, /api as /
        return {"path": f"{route.prefix}(/|$)(.*)", "pathType": "ImplementationSpecific",
                "backend": backend}
    # Prefix matches whole segments (/api matches /api and /api/x, not /apix), as Caddy does.
    return {"path": route.prefix, "pathType": "Prefix", "backend": backend}
