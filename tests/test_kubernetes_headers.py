"""target.kind kubernetes: the Ingresses send the headers the Docker proxies send (Prefect's
Content-Security-Policy from components/csp.py on its route, the security headers on every
route) through ingress-nginx's custom-headers annotation, and what cannot carry them is
refused by key."""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest
from harness import ROOT, evaluate, stack_file

from components import caddy, csp, traefik
from components.config import ProxySettings
from components.errors import ConfigError
from components.kubernetes import headers
from components.kubernetes.emitted import kubernetes_objects
from components.kubernetes.manifests import Manifest, manifests
from components.loader import load
from components.routes import Route
from components.security_headers import security_headers

EXAMPLE = "examples/kubernetes/prod.yaml"
KUBERNETES_VERSION = "1.37.0"  # as tests/test_kubernetes.py
CUSTOM_HEADERS = "nginx.ingress.kubernetes.io/custom-headers"
# ingress-nginx's own validation of a custom-headers ConfigMap (internal/ingress/annotations/
# customheaders): a name or value outside these answers 503 on the Ingress's paths.
NGINX_HEADER_NAME = re.compile(r"^[a-zA-Z\d\-_]+$")
NGINX_HEADER_VALUE = re.compile(r"^[a-zA-Z\d_ :;.,\\/\"'?!(){}\[\]@<>=\-+*#$&`|~^%]+$")
DOCS = {"name": "docs", "image": "nginx:1.27.3-alpine", "port": 80, "user": "101",
        "healthCheck": {"http": {"path": "/docs"}}, "route": {"prefix": "/docs"}}


def config_with(**changes: Any) -> dict[str, Any]:
    config, _ = stack_file(EXAMPLE)
    for section, value in changes.items():
        config[section] = value if not isinstance(value, dict) else {**config.get(section, {}),
                                                                     **value}
    return config


def load_config(config: dict[str, Any]):
    return load({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, set())


def planned(config: dict[str, Any]) -> dict[str, Manifest]:
    loaded = load_config(config)
    return {m.key: m for m in manifests(loaded.plan, loaded.config)}


def sent_by(ingress: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """The headers the controller adds on this Ingress: the ConfigMap its annotation names."""
    ref = (ingress["metadata"].get("annotations") or {}).get(CUSTOM_HEADERS)
    if ref is None:
        return {}
    namespace, name = ref.split("/")
    found = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"].get("name") == name
             and o["metadata"]["namespace"] == namespace]
    assert len(found) == 1, f"{ref} names no single ConfigMap"
    return found[0]["data"]


def by_path(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["path"].split("(")[0]: o for o in objects if o["kind"] == "Ingress"
            for rule in o["spec"]["rules"] for p in rule["http"]["paths"]}


@pytest.fixture(scope="module")
def registered():
    """The example with a plain route beside Prefect's, evaluated on the Pulumi mocks."""
    config, secrets = stack_file(EXAMPLE)
    config["services"] = [*config.get("services", []), DOCS]
    ev = evaluate(config, secrets, stack="k8s-headers")
    return ev, kubernetes_objects(ev)


def test_prefects_ingress_sends_the_csp_of_csp_py_and_the_security_headers(registered):
    _, objects = registered
    prefect = by_path(list(objects.values()))["/prefect"]
    sent = sent_by(prefect, list(objects.values()))
    assert sent == {"Content-Security-Policy": csp.PREFECT_UI_POLICY,
                    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                    "Referrer-Policy": "strict-origin-when-cross-origin",
                    "Strict-Transport-Security": "max-age=31536000"}


def test_other_routes_get_the_security_headers_but_no_policy(registered):
    _, objects = registered
    routes = by_path(list(objects.values()))
    assert set(routes) == {"/prefect", "/api", "/docs"}
    prefect = routes.pop("/prefect")
    assert [p["path"] for r in prefect["spec"]["rules"] for p in r["http"]["paths"]] == \
        ["/prefect"], "the policy would break apps sharing Prefect's Ingress"
    for path, ingress in routes.items():
        sent = sent_by(ingress, list(objects.values()))
        assert "Content-Security-Policy" not in sent, path
        assert sent["X-Frame-Options"] == "SAMEORIGIN", path


def test_each_ingress_waits_for_its_headers_and_moved_routes_for_the_ingress_they_left(registered):
    """Prefect's Ingress keeps the name `routes`; a plain route that shared it moves to
    `routes-apps`, created after `routes` gave its path up (ingress-nginx's admission refuses
    a host and path two Ingresses define)."""
    ev, objects = registered
    ingresses = {r.name: r for r in ev.resources if r.type.endswith(":Ingress")}
    assert objects["ingress-routes-apps"]["metadata"]["name"] == "routes-apps"
    assert "ingress-routes" in ingresses["ingress-routes-apps"].dependencies
    for name, resource in ingresses.items():
        assert f"headers-{name.removeprefix('ingress-')}" in resource.dependencies, name


TRAEFIK_HEADERS = {  # Traefik's headers middleware option -> (header, value sent)
    "contentTypeNosniff": ("X-Content-Type-Options", lambda v: "nosniff" if v else None),
    "customFrameOptionsValue": ("X-Frame-Options", str),
    "referrerPolicy": ("Referrer-Policy", str),
    "stsSeconds": ("Strict-Transport-Security", lambda v: f"max-age={v}")}


@pytest.mark.parametrize("tls", ["internal", "acme", "off"])
@pytest.mark.parametrize("on", [True, False])
def test_the_security_headers_are_the_ones_caddy_and_traefik_send(tls, on):
    """One list (components/security_headers.py), rendered as itself by all three proxies."""
    proxy = ProxySettings.model_validate({"domain": "prefect.example.com", "tls": tls,
                                          "acme": {"email": "a@b.co"}, "securityHeaders": on})
    expected = security_headers(proxy)
    assert bool(expected) == on
    route = Route("/prefect", "prefect-server", 4200)
    caddyfile = str(caddy.render_caddyfile([route], proxy, "admin", "pw"))
    sent_by_caddy = {m[1]: m[2].strip('"') for m in
                     re.finditer(r"^\t\t([A-Z][\w-]+) (.+)$", caddyfile, re.M)}
    assert sent_by_caddy == expected
    middlewares = traefik.dynamic_config([route], proxy, "admin", "pw")["http"].get(
        "middlewares", {})
    options = middlewares.get("security-headers", {}).get("headers", {})
    sent_by_traefik = {TRAEFIK_HEADERS[k][0]: TRAEFIK_HEADERS[k][1](v) for k, v in options.items()}
    assert sent_by_traefik == expected


def test_every_header_passes_ingress_nginx_validation_and_is_in_the_documented_allow_list():
    objects = [m.body for m in planned(config_with(services=[DOCS])).values()]
    sent = [sent_by(o, objects) for o in objects if o["kind"] == "Ingress"]
    assert sent and all(sent)
    for name, value in {k: v for s in sent for k, v in s.items()}.items():
        assert NGINX_HEADER_NAME.match(name) and NGINX_HEADER_VALUE.match(value), name
        assert name in headers.ALLOWED
    assert set(headers.ALLOWED) == {k for s in sent for k in s}


def test_security_headers_off_sends_none_and_tls_off_sends_no_hsts():
    off = planned(config_with(proxy={"securityHeaders": False}))
    assert not [m for m in off.values() if m.kind == "ConfigMap" and m.key.startswith("headers")]
    assert all(CUSTOM_HEADERS not in m.body["metadata"].get("annotations", {})
               for m in off.values() if m.kind == "Ingress")
    plain_http = planned(config_with(proxy={"tls": "off"},
                                     target={"kind": "kubernetes", "kubernetes": {
                                         "imageRegistry": "registry.example.com/platform"}}))
    objects = [m.body for m in plain_http.values()]
    prefect = sent_by(by_path(objects)["/prefect"], objects)
    assert "Strict-Transport-Security" not in prefect and prefect["Content-Security-Policy"]


def test_a_changed_header_is_a_new_config_map_name():
    proxy = ProxySettings.model_validate({})
    one = headers.config_map_name("routes", security_headers(proxy))
    other = headers.config_map_name("routes", {**security_headers(proxy), "X": "y"})
    assert one != other and one.startswith("routes-headers-")


def refused(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        load_config(config)
    return [(p.path, p.message) for p in err.value.problems]


@pytest.mark.parametrize("class_name", ["traefik", "caddy"])
def test_an_ingress_class_that_ignores_the_nginx_annotations_is_refused_by_key(class_name):
    config = config_with()
    config["target"]["kubernetes"]["ingress"]["className"] = class_name
    found = refused(config)
    assert [p for p, m in found if p == "target.kubernetes.ingress.className"
            and "Content-Security-Policy" in m and "basic auth" in m], found


def test_security_headers_asked_for_without_a_proxy_are_refused_by_key():
    """proxy.kind none: Prefect is published directly and sends no such header itself."""
    config, _ = stack_file("Pulumi.dev.yaml")
    config["proxy"] = {"kind": "none", "securityHeaders": True}
    config["server"] = {**config["server"], "publicUrl": "http://prefect.lan:4200"}
    found = refused(config)
    assert [p for p, m in found if p == "proxy.securityHeaders" and "kind: none" in m], found
    config["proxy"] = {"kind": "none"}  # the default (true) is not an ask: nothing to refuse
    assert load_config(config).config.proxy.kind == "none"


def test_the_readme_allows_exactly_the_headers_the_ingresses_send():
    """A header added here and not to the documented controller setting would 503 the route."""
    line = re.search(r'^global-allowed-response-headers: "([^"]+)"$',
                     (ROOT / "README.md").read_text(), re.M)
    assert line and line[1].split(",") == list(headers.ALLOWED)


def test_the_new_objects_are_valid_for_the_kubernetes_api(registered):
    _, objects = registered
    checked = [o for key, o in objects.items() if key.startswith(("headers-", "ingress-routes"))]
    assert len(checked) >= 6  # routes, routes-apps, routes-strip: each with its ConfigMap
    for obj in checked:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
