#!/usr/bin/env python3
"""Checks the Helm chart (charts/mcpguard) against the kustomize install it packages.

Renders the chart offline with the Helm v4 engine (PyPI's helm-python-sdk; there is no helm
binary), and compares the objects, parsed and keyed by kind/namespace/name, with what
`kubectl kustomize` renders:

  default values           webhook-manifests/ + the Role/RoleBinding of mcp-namespace/
  certManagement=cert-manager   overlays/cert-manager + the same Role/RoleBinding
  mcpNamespaces.create=true     webhook-manifests/ + all of mcp-namespace/ (the Namespace kept
                                on uninstall: helm.sh/resource-policy: keep)
  crds/                    webhook-manifests/crds/

Each comparison leaves out the Namespace mcpguard-system: it is the release namespace
(`helm install -n mcpguard-system --create-namespace`), and Helm refuses to install a chart
that contains its own release namespace once that exists ("invalid ownership metadata").
The one other difference is on purpose: with certManagement=self the empty Secret
mcpguard-tls carries Helm's pre-install hook annotations (templates/certificate-secret.yaml).

It also renders certManagement=files and monitoring on, checks that bad values fail the render
with their message, lints the chart (`helm lint --strict`), and runs
`kubernetes-validate --strict --kubernetes-version 1.33.0` on every rendered object that has a
built-in schema: cert-manager.io kinds and the ServiceMonitor (monitoring.coreos.com) have none
and are left out.

Exits 0 and prints "helm-check: ok ..." last when everything holds; otherwise prints a diff of
each mismatch and exits 1. Needs: helm-python-sdk, PyYAML, kubectl, kubernetes-validate.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "mcpguard"
RELEASE = "mcpguard"
NAMESPACE = "mcpguard-system"
KUBERNETES_VERSION = "1.33.0"
# Kinds with no schema in kubernetes-validate (they come from other projects' CRDs).
NO_BUILTIN_SCHEMA_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")

Object = dict[str, Any]
Key = tuple[str, str, str]

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr)


def key(obj: Object) -> Key:
    meta = obj.get("metadata") or {}
    return (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def show(k: Key) -> str:
    kind, namespace, name = k
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def parse(text: str, origin: str) -> list[Object]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as err:
        fail(f"{origin} is not valid YAML: {err}")
        return []


def kustomize(directory: str) -> list[Object]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
        return []
    return parse(result.stdout, f"kubectl kustomize {directory}")


def render(helm: Any, chart: Any, values: dict[str, Any], label: str) -> list[Object]:
    try:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as err:
        fail(f"render {label}: {err}")
        return []
    objects: list[Object] = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        objects.extend(parse(text, f"{template} ({label})"))
    return objects


def render_error(helm: Any, chart: Any, values: dict[str, Any]) -> str | None:
    """The render error for values that must be refused, or None when the render succeeds."""
    try:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as err:
        return str(err)
    return None


def by_key(objects: list[Object], label: str) -> dict[Key, Object]:
    keyed: dict[Key, Object] = {}
    for obj in objects:
        k = key(obj)
        if k in keyed:
            fail(f"{label}: {show(k)} appears twice")
        keyed[k] = obj
    return keyed


def without_release_namespace(objects: list[Object]) -> list[Object]:
    return [o for o in objects if key(o) != ("Namespace", "", NAMESPACE)]


def compare(label: str, chart_objects: list[Object], expected: list[Object]) -> int:
    """Fails with a diff per differing object; returns how many objects were compared."""
    got = by_key(chart_objects, f"chart ({label})")
    want = by_key(expected, f"kustomize ({label})")
    for k in sorted(want.keys() - got.keys()):
        fail(f"{label}: the chart does not render {show(k)}")
    for k in sorted(got.keys() - want.keys()):
        fail(f"{label}: the chart renders {show(k)}, which kustomize does not")
    for k in sorted(want.keys() & got.keys()):
        if got[k] != want[k]:
            a = yaml.safe_dump(want[k], sort_keys=True).splitlines()
            b = yaml.safe_dump(got[k], sort_keys=True).splitlines()
            diff = "\n".join(
                difflib.unified_diff(a, b, "kustomize", "chart", lineterm="", n=2)
            )
            fail(f"{label}: {show(k)} differs:\n{diff}")
    return len(want)


# The one difference the chart makes on purpose: the empty certificate Secret of
# certManagement=self is a pre-install hook (templates/certificate-secret.yaml says why).
SECRET_HOOK = {"helm.sh/hook": "pre-install", "helm.sh/hook-delete-policy": "before-hook-creation"}


def as_helm_installs(objects: list[Object]) -> list[Object]:
    """The kustomize objects with the chart's sanctioned difference applied."""
    copied: list[Object] = json.loads(json.dumps(objects))
    for obj in copied:
        if key(obj) == ("Secret", NAMESPACE, "mcpguard-tls"):
            obj["metadata"].setdefault("annotations", {}).update(SECRET_HOOK)
    return copied


def mcp_namespace_rbac(mcp_namespace: list[Object]) -> list[Object]:
    return [o for o in mcp_namespace if o.get("kind") != "Namespace"]


def validate_strict(objects: list[Object]) -> tuple[int, list[str]]:
    """Runs kubernetes-validate on every object with a built-in schema."""
    checked = [o for o in objects if not o.get("apiVersion", "").startswith(NO_BUILTIN_SCHEMA_GROUPS)]
    skipped = sorted({f"{o['apiVersion']} {o['kind']}" for o in objects if o not in checked})
    with tempfile.TemporaryDirectory(prefix="helm-check-") as directory:
        files = []
        for index, obj in enumerate(checked):
            path = Path(directory) / f"{index:03}.yaml"
            path.write_text(json.dumps(obj))
            files.append(str(path))
        result = subprocess.run(
            ["kubernetes-validate", "--quiet", "--strict", "--kubernetes-version", KUBERNETES_VERSION, *files],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        fail(f"kubernetes-validate --strict failed:\n{result.stdout}{result.stderr}")
    return len(checked), skipped


def main() -> int:
    try:
        import helm_python as helm
    except ImportError:
        print(
            "helm-check: helm-python-sdk is missing: python3 -m pip install helm-python-sdk",
            file=sys.stderr,
        )
        return 2
    for tool in ("kubectl", "kubernetes-validate"):
        if shutil.which(tool) is None:
            print(f"helm-check: {tool} is not on PATH", file=sys.stderr)
            return 2

    try:
        chart = helm.Chart.load(CHART)
    except helm.HelmError as err:
        print(f"helm-check: FAILED: the chart does not load: {err}", file=sys.stderr)
        return 1
    # One version: the chart's version and appVersion are the crate's, and the default image
    # is the one named in IMAGE.
    with open(ROOT / "Cargo.toml", "rb") as cargo:
        crate_version = tomllib.load(cargo)["package"]["version"]
    image = (ROOT / "IMAGE").read_text().strip()
    metadata = chart.metadata
    if metadata.get("version") != crate_version or metadata.get("appVersion") != crate_version:
        fail(
            f"Chart.yaml version {metadata.get('version')} / appVersion {metadata.get('appVersion')} "
            f"must be the crate version {crate_version} (Cargo.toml)"
        )
    if image != f"{chart.values['image']['repository']}:v{crate_version}":
        fail(f"the chart's default image is not IMAGE ({image})")

    base = as_helm_installs(without_release_namespace(kustomize("webhook-manifests")))
    cert_manager = without_release_namespace(kustomize("webhook-manifests/overlays/cert-manager"))
    mcp_namespace = kustomize("webhook-manifests/mcp-namespace")
    crds = kustomize("webhook-manifests/crds")

    compared = 0
    default_render = render(helm, chart, {}, "default values")
    compared += compare("default values", default_render, base + mcp_namespace_rbac(mcp_namespace))

    cert_manager_render = render(helm, chart, {"certManagement": "cert-manager"}, "cert-manager")
    compared += compare(
        "certManagement=cert-manager",
        cert_manager_render,
        cert_manager + mcp_namespace_rbac(mcp_namespace),
    )

    kept_namespaces = json.loads(json.dumps(mcp_namespace))
    for obj in kept_namespaces:
        if obj["kind"] == "Namespace":
            obj["metadata"].setdefault("annotations", {})["helm.sh/resource-policy"] = "keep"
    create_render = render(helm, chart, {"mcpNamespaces": {"create": True}}, "create namespaces")
    compared += compare("mcpNamespaces.create=true", create_render, base + kept_namespaces)

    chart_crds = [doc for crd in chart.crds for doc in parse(crd["data"], crd["filename"])]
    compared += compare("crds/", chart_crds, crds)

    # certManagement=files: the default install, less the Secret (you create it), with the
    # mode in the Deployment and your CA in both webhooks.
    ca_bundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    files_expected = json.loads(json.dumps(base + mcp_namespace_rbac(mcp_namespace)))
    files_expected = [o for o in files_expected if key(o) != ("Secret", NAMESPACE, "mcpguard-tls")]
    for obj in files_expected:
        if obj["kind"] == "Deployment":
            for env in obj["spec"]["template"]["spec"]["containers"][0]["env"]:
                if env["name"] == "MCPGUARD_CERT_MANAGEMENT":
                    env["value"] = "files"
        if obj["kind"].endswith("WebhookConfiguration"):
            for webhook in obj["webhooks"]:
                webhook["clientConfig"]["caBundle"] = ca_bundle
    files_render = render(helm, chart, {"certManagement": "files", "caBundle": ca_bundle}, "files")
    compared += compare("certManagement=files", files_render, files_expected)

    # Values that change single fields, checked on the field.
    custom_render = render(
        helm,
        chart,
        {
            "image": {"repository": "registry.example/mcpguard", "tag": "v9.9.9"},
            "replicas": 3,
            "policy": "kind: MCPPolicy\n",
            "mcpNamespaces": {"names": ["mcp", "tools"]},
        },
        "custom values",
    )
    custom = by_key(custom_render, "custom values")
    deployment = custom.get(("Deployment", NAMESPACE, "mcpguard"), {})
    container = (deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0]
    if container.get("image") != "registry.example/mcpguard:v9.9.9" or deployment["spec"]["replicas"] != 3:
        fail(f"custom values: image/replicas not applied: {container.get('image')}")
    policy = custom.get(("ConfigMap", NAMESPACE, "mcpguard-policy"), {})
    if policy.get("data") != {"mcp-restricted.yaml": "kind: MCPPolicy\n"}:
        fail(f"custom values: policy not applied: {policy.get('data')}")
    for namespace in ("mcp", "tools"):
        for kind in ("Role", "RoleBinding"):
            if (kind, namespace, "mcpguard-controller") not in custom:
                fail(f"custom values: no {kind} mcpguard-controller in {namespace}")
    webhook = custom.get(("ValidatingWebhookConfiguration", "", "mcpguard"), {"webhooks": [{}]})
    selector = webhook["webhooks"][0].get("namespaceSelector", {}).get("matchExpressions", [{}])[0]
    if selector.get("values") != ["mcp", "tools"]:
        fail(f"custom values: webhook selector not applied: {selector}")

    single = by_key(render(helm, chart, {"replicas": 1}, "one replica"), "one replica")
    if ("PodDisruptionBudget", NAMESPACE, "mcpguard") in single:
        fail("replicas=1 renders the PDB: minAvailable: 1 would block every node drain")
    if ("PodDisruptionBudget", NAMESPACE, "mcpguard") not in custom:
        fail("replicas=3 renders no PDB")

    monitored = by_key(
        render(helm, chart, {"monitoring": {"serviceMonitor": {"enabled": True}}}, "monitoring"),
        "monitoring",
    )
    monitor = monitored.get(("ServiceMonitor", NAMESPACE, "mcpguard"))
    if not monitor or monitor["spec"]["endpoints"] != [
        {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "30s"}
    ]:
        fail(f"monitoring: ServiceMonitor missing or wrong: {monitor}")
    if any(k[0] == "ServiceMonitor" for k in by_key(default_render, "default values")):
        fail("default values render a ServiceMonitor; monitoring is off by default")

    # The chart's alert rules and dashboard are webhook-manifests/monitoring's, exactly.
    observed = by_key(
        render(
            helm,
            chart,
            {"monitoring": {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}},
            "rules and dashboard",
        ),
        "rules and dashboard",
    )
    shipped = by_key(kustomize("webhook-manifests/monitoring"), "kubectl kustomize webhook-manifests/monitoring")
    for kind, name, part in [("PrometheusRule", "mcpguard", "spec"), ("ConfigMap", "mcpguard-dashboard", "data")]:
        ours = observed.get((kind, NAMESPACE, name))
        theirs = shipped.get((kind, NAMESPACE, name))
        if ours is None or theirs is None or ours.get(part) != theirs.get(part):
            fail(f"monitoring: {kind} {name} differs from webhook-manifests/monitoring ({part})")
    if any(k[0] in ("PrometheusRule",) or k[2] == "mcpguard-dashboard" for k in by_key(default_render, "default values")):
        fail("default values render the rules or the dashboard; they are off by default")

    # reportApi reaches serve as MCPGUARD_REPORT_API; the default sets nothing (serve's own).
    both = by_key(render(helm, chart, {"reportApi": "both"}, "reportApi=both"), "reportApi=both")
    env = both[("Deployment", NAMESPACE, "mcpguard")]["spec"]["template"]["spec"]["containers"][0]["env"]
    if {"name": "MCPGUARD_REPORT_API", "value": "both"} not in env:
        fail(f"reportApi=both: MCPGUARD_REPORT_API not set to both: {env}")
    default_env = by_key(default_render, "default values")[("Deployment", NAMESPACE, "mcpguard")]["spec"][
        "template"
    ]["spec"]["containers"][0]["env"]
    if any(e["name"] == "MCPGUARD_REPORT_API" for e in default_env):
        fail("default values set MCPGUARD_REPORT_API; serve's default (policyreport) applies")

    refused = {
        "certManagement=bogus": ({"certManagement": "bogus"}, "certManagement must be self, cert-manager or files"),
        "files without caBundle": ({"certManagement": "files"}, "certManagement=files needs caBundle"),
        "caBundle with self": ({"caBundle": ca_bundle}, "caBundle is only for certManagement=files"),
        "no MCP namespace": ({"mcpNamespaces": {"names": []}}, "mcpNamespaces.names needs at least one namespace"),
        "reportApi=bogus": ({"reportApi": "bogus"}, "reportApi must be policyreport, openreports or both"),
        "kube-system as MCP namespace": (
            {"mcpNamespaces": {"names": ["kube-system"]}},
            "mcpNamespaces.names may not name kube-system",
        ),
    }
    for label, (values, message) in refused.items():
        error = render_error(helm, chart, values)
        if error is None or message not in error:
            fail(f"{label}: the render must fail with {message!r}, got {error!r}")
    try:
        chart.render({}, name=RELEASE, namespace="default", is_install=True)
        fail("a release outside mcpguard-system must fail the render")
    except helm.HelmError as err:
        if "install mcpguard in the namespace mcpguard-system" not in str(err):
            fail(f"a release outside mcpguard-system fails with the wrong message: {err}")

    report = helm.lint(CHART, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES_VERSION}")
    lint_problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if report.get("errors") or lint_problems:
        fail(f"helm lint --strict: {json.dumps(report, indent=2)}")
    lint_summary = f"{report.get('total_charts_linted')} chart linted, no warning or error ({len(report.get('messages', []))} info)"

    every_render = (
        default_render + cert_manager_render + create_render + files_render + custom_render
        + chart_crds + list(monitored.values())
    )
    validated, skipped = validate_strict(every_render)
    print(f"kubernetes-validate --strict {KUBERNETES_VERSION}: {validated} objects; no built-in schema, not validated: {', '.join(skipped)}")
    print(f"helm lint --strict: {lint_summary}")

    if failures:
        print(f"helm-check: FAILED ({len(failures)} problems, see above)", file=sys.stderr)
        return 1
    print(
        f"helm-check: ok (chart {chart.metadata['version']}, {compared} objects equal to kustomize "
        f"in 5 renders, {len(refused) + 1} bad values refused, lint clean, {validated} objects valid)"
    )
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
