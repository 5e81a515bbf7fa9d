"""The pods a Kubernetes stack emits, as containers the live harness (runner.py) can run.

No cluster can be had here, so the emitted objects are read the way the kubelet and the
cluster's networking would read them:
- every Deployment/StatefulSet replica and every Job is a container: its args, env (Secret
  references resolved from the emitted Secrets), files (ConfigMap/Secret subPath mounts),
  claims and emptyDirs as volumes, runAsUser/runAsGroup, working directory;
- readiness probes are the health checks the harness waits on (Pulumi waits for ready
  Deployments and completed Jobs, in the order of the resources' dependencies);
- each NetworkPolicy that admits traffic is a bridge joining the pods it selects and the pods
  it admits, so a pod the policies do not admit cannot reach PostgreSQL; Services are the
  DNS names on those bridges;
- the ingress controller is Caddy, configured from the Ingress objects (paths, the
  ingress-nginx rewrite, basic-auth and custom-headers annotations, TLS) and admitted by
  the policy that admits the controller's namespace.
Stand-ins beyond runner.IMAGES: the worker image's flow code is ./flows (on Kubernetes it is
built into the image), emptyDir at /tmp is the container's own /tmp the runner gives every
container, and Prefect's pods run as root
(the stand-in Prefect's interpreter is under /root; the emitted runAsUser is 1001).
"""

from __future__ import annotations

from typing import Any

from components.config import DEFAULT_CADDY_IMAGE
from components.dryrun import EmittedContainer, EmittedMount, Evaluation, creation_order
from components.kubernetes.emitted import kubernetes_objects
from live.runner import ROOT

FLOW_DIR = "/opt/prefect/flows"
CONTROLLER = "ingress-controller"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
STAND_IN_AS_ROOT = "prefecthq/prefect:"


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        if expression["operator"] == "In" and labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pods(evaluation: Evaluation) -> list[EmittedContainer]:
    """Every pod (and the ingress controller) as a container, dependencies first."""
    objects = kubernetes_objects(evaluation)
    dependencies = {r.name: r.dependencies for r in evaluation.resources}
    secrets = {o["metadata"]["name"]: o.get("stringData") or {}
               for o in objects.values() if o["kind"] == "Secret"}
    config_maps = {o["metadata"]["name"]: o.get("data") or {}
                   for o in objects.values() if o["kind"] == "ConfigMap"}
    services = [o for o in objects.values() if o["kind"] == "Service"]
    policies = [o for o in objects.values() if o["kind"] == "NetworkPolicy"]
    routed = [o for o in objects.values() if o["kind"] == "Ingress"]

    names: dict[str, list[str]] = {}  # resource name -> its containers
    found: list[tuple[str, dict[str, Any], str, dict[str, str]]] = []
    for resource, obj in objects.items():
        if obj["kind"] not in WORKLOADS:
            continue
        labels = obj["spec"]["template"]["metadata"]["labels"]
        base = labels["app.kubernetes.io/name"]
        count = 1 if obj["kind"] == "Job" else obj["spec"].get("replicas", 1)
        names[resource] = [base if count == 1 else f"{base}-{i}" for i in range(1, count + 1)]
        found += [(resource, obj, name, labels) for name in names[resource]]

    containers = []
    for resource, obj, name, labels in found:
        pod = obj["spec"]["template"]["spec"]
        container = pod["containers"][0]
        aliases = tuple(s["metadata"]["name"] for s in services
                        if matches({"matchLabels": s["spec"]["selector"]}, labels))
        security = pod.get("securityContext") or {}
        user = (f"{security['runAsUser']}:{security.get('runAsGroup', security['runAsUser'])}"
                if "runAsUser" in security else None)
        if container["image"].startswith(STAND_IN_AS_ROOT):
            user = None  # the stand-in Prefect's interpreter lives under /root (mode 700)
        depends = tuple(sorted({c for d in dependencies.get(resource, ()) for c in names.get(d, ())}))
        containers.append(EmittedContainer(
            name=name, aliases=aliases, image=container["image"],
            command=tuple(container["args"]) if container.get("args") else None,
            entrypoint=tuple(container["command"]) if container.get("command") else None,
            env=env(container, secrets), uploads=files(pod, container, secrets, config_maps),
            healthcheck=readiness(container),
            networks={net: aliases for net in bridges(policies, labels)},
            mounts=mounts(pod, container, name, obj), ports=(), user=user,
            working_dir=container.get("workingDir"), one_shot=obj["kind"] == "Job",
            wait_healthy=obj["kind"] != "Job", depends_on=depends))
    if routed:
        ingress_deps = tuple(sorted({c for name, o in objects.items() if o["kind"] == "Ingress"
                                     for d in dependencies.get(name, ()) for c in names.get(d, ())}))
        containers.append(ingress_controller(routed, secrets, policies, ingress_deps,
                                             config_maps))
    return creation_order(containers)


def env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    out = {}
    for entry in container.get("env") or []:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            out[entry["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            out[entry["name"]] = entry["value"]
    return out


def files(pod: dict[str, Any], container: dict[str, Any], secrets: dict[str, dict[str, str]],
          config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    sources = {}
    for volume in pod.get("volumes") or []:
        if "configMap" in volume:
            sources[volume["name"]] = config_maps[volume["configMap"]["name"]]
        elif "secret" in volume:
            sources[volume["name"]] = secrets[volume["secret"]["secretName"]]
    return {m["mountPath"]: sources[m["name"]][m["subPath"]]
            for m in container.get("volumeMounts") or [] if m["name"] in sources}


def mounts(pod: dict[str, Any], container: dict[str, Any], name: str, obj: dict[str, Any]
           ) -> tuple[EmittedMount, ...]:
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod.get("volumes") or [] if "persistentVolumeClaim" in v}
    claims.update({t["metadata"]["name"]: t["metadata"]["name"]
                   for t in obj["spec"].get("volumeClaimTemplates") or []})
    scratch = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    out = []
    for m in container.get("volumeMounts") or []:
        if m["name"] in claims:
            out.append(EmittedMount(m["mountPath"], "volume", f"claim-{claims[m['name']]}",
                                    bool(m.get("readOnly"))))
        elif m["name"] in scratch and m["mountPath"] != "/tmp":
            out.append(EmittedMount(m["mountPath"], "volume", f"{name}-{m['subPath']}", False))
    if "worker" in (container.get("args") or []):
        out.append(EmittedMount(FLOW_DIR, "bind", str(ROOT / "flows"), True))  # the image's code
    return tuple(out)


def readiness(container: dict[str, Any]) -> tuple[str, ...] | None:
    probe = container.get("readinessProbe")
    if probe is None:
        return None
    if "exec" in probe:
        return ("CMD", *probe["exec"]["command"])
    get = probe["httpGet"]
    url = f"http://127.0.0.1:{get['port']}{get['path']}"
    return ("CMD", "/usr/bin/python3", "-c",
            f"import urllib.request as u; u.urlopen('{url}', timeout=3)")


def bridges(policies: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """The policies that let this pod talk to others: it is selected by one that admits pods,
    or admitted by one."""
    out = []
    for policy in policies:
        spec = policy["spec"]
        for rule in spec.get("ingress") or []:
            admitted = [f["podSelector"] for f in rule.get("from") or []
                        if "podSelector" in f and "namespaceSelector" not in f]
            selected = matches(spec["podSelector"], labels)
            if (selected and (admitted or any("namespaceSelector" in f for f in rule["from"]))) \
                    or any(matches(s, labels) for s in admitted):
                out.append(policy["metadata"]["name"])
    return sorted(set(out))


def ingress_controller(ingresses: list[dict[str, Any]], secrets: dict[str, dict[str, str]],
                       policies: list[dict[str, Any]], depends: tuple[str, ...],
                       config_maps: dict[str, dict[str, str]]) -> EmittedContainer:
    """Caddy serving the Ingresses as ingress-nginx would (see module docstring)."""
    admits_controller = [p["metadata"]["name"] for p in policies
                         if any("namespaceSelector" in f for rule in p["spec"].get("ingress") or []
                                for f in rule.get("from") or [])]
    return EmittedContainer(
        name=CONTROLLER, aliases=("proxy",), image=DEFAULT_CADDY_IMAGE, command=None,
        entrypoint=None, env={},
        uploads={"/etc/caddy/Caddyfile": caddyfile(ingresses, secrets, config_maps)},
        healthcheck=("CMD", "/usr/bin/python3", "-c",
                     "import urllib.request as u; u.urlopen('http://127.0.0.1:2020/', timeout=3)"),
        networks={net: () for net in admits_controller},
        mounts=(EmittedMount("/data", "volume", "ingress-data", False),
                EmittedMount("/config", "volume", "ingress-config", False)),
        ports=(("127.0.0.1", 443, 443), ("127.0.0.1", 80, 80)), user=None, working_dir=None,
        one_shot=False, wait_healthy=True, depends_on=depends)


def caddyfile(ingresses: list[dict[str, Any]], secrets: dict[str, dict[str, str]],
              config_maps: dict[str, dict[str, str]]) -> str:
    hosts: dict[str, list[tuple[str, str]]] = {}  # site -> (prefix, handle block)
    tls_hosts = {h for i in ingresses for t in i["spec"].get("tls") or [] for h in t["hosts"]}
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations") or {}
        nginx = "nginx.ingress.kubernetes.io/"
        auth = ""
        if annotations.get(nginx + "auth-type") == "basic":
            user, _, digest = secrets[annotations[nginx + "auth-secret"]]["auth"].partition(":")
            auth = f"\t\tbasic_auth {{\n\t\t\t{user} {digest}\n\t\t}}\n"
        strip = annotations.get(nginx + "rewrite-target") == "/$2"
        # custom-headers: <namespace>/<ConfigMap>, each entry a response header (more_set_headers)
        headers = config_maps[annotations[nginx + "custom-headers"].split("/")[1]] \
            if nginx + "custom-headers" in annotations else {}
        sent = "".join(f'\t\theader {name} "{value}"\n' for name, value in headers.items())
        for rule in ingress["spec"]["rules"]:
            site = ("https://" if rule["host"] in tls_hosts else "http://") + rule["host"]
            for path in rule["http"]["paths"]:
                prefix = path["path"].split("(")[0]
                backend = path["backend"]["service"]
                upstream = f"{backend['name']}:{backend['port']['number']}"
                body = auth + sent + (f"\t\turi strip_prefix {prefix}\n" if strip else "")
                body += f"\t\treverse_proxy {upstream}\n"
                if prefix == "/":
                    block = f"\thandle {{\n{body}\t}}\n"
                else:
                    matcher = "@" + prefix.strip("/").replace("/", "-")
                    block = (f"\t{matcher} path {prefix} {prefix}/*\n"
                             f"\thandle {matcher} {{\n{body}\t}}\n")
                hosts.setdefault(site, []).append((prefix, block))
    lines = ["{\n\tadmin off\n\tskip_install_trust\n}\n",
             "http://:2020 {\n\trespond 200\n}\n"]
    for site, handles in sorted(hosts.items()):
        ordered = sorted(handles, key=lambda h: (h[0] == "/", -len(h[0])))
        lines.append(site + (" {\n\ttls internal\n" if site.startswith("https") else " {\n")
                     + "".join(block for _, block in ordered) + "}\n")
    return "\n".join(lines)
