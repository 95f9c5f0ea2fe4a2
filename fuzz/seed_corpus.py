#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets from the repository's own examples.

Run from the repository root: python3 fuzz/seed_corpus.py
Seeds are named seed-*; libFuzzer's own finds are named by their SHA-1.
"""
import copy
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    path = CORPUS / target / f"seed-{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


base = json.loads((ROOT / "examples" / "admission-review.json").read_text())
write("review", "example", (ROOT / "examples" / "admission-review.json").read_bytes())
write("review", "example-compact", compact(base))


def review(**changes):
    r = copy.deepcopy(base)
    req = r["request"]
    req.pop("requestKind", None)
    req.pop("requestResource", None)
    req.pop("options", None)
    req["object"]["metadata"].pop("managedFields", None)
    req["object"]["metadata"].pop("annotations", None)
    for key, value in changes.items():
        if value is None:
            req.pop(key, None)
        else:
            req[key] = value
    return r


pod = review()["request"]["object"]

# UPDATE that changes an image (judged), and one that only changes labels (skipped).
new = copy.deepcopy(pod)
new["spec"]["containers"][0]["image"] = "ghcr.io/github/github-mcp-server:v0.21.0"
write("review", "update-image", compact(review(operation="UPDATE", object=new, oldObject=pod)))
relabel = copy.deepcopy(pod)
relabel["metadata"]["labels"]["extra"] = "x"
relabel["metadata"]["finalizers"] = ["example.com/keep"]
write("review", "update-metadata", compact(review(operation="UPDATE", object=relabel, oldObject=pod)))

# kubectl debug: an ephemeral container added through the subresource.
debug = copy.deepcopy(pod)
debug["spec"]["ephemeralContainers"] = [
    {"name": "debugger", "image": "busybox:1.36", "stdin": True, "tty": True,
     "targetContainerName": "server"}
]
write("review", "ephemeralcontainers", compact(review(
    operation="UPDATE", subResource="ephemeralcontainers", object=debug, oldObject=pod)))
write("review", "resize", compact(review(operation="UPDATE", subResource="resize", object=new, oldObject=pod)))

# dryRun, an unknown operation, DELETE, another namespace, a missing object.
write("review", "dry-run", compact(review(dryRun=True)))
write("review", "unknown-operation", compact(review(operation="PATCH")))
write("review", "delete", compact(review(operation="DELETE", object=None, oldObject=pod)))
write("review", "legacy-namespace", compact(review(namespace="legacy")))
write("review", "no-object", compact(review(object=None)))

# A privileged browser pod matching the fuzz policy's exception, with a secret literal,
# a runtimeClassName and a nodeSelector that conflicts with the RuntimeClass's.
browser = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"generateName": "browser-", "namespace": "mcp",
                 "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                                 "container.apparmor.security.beta.kubernetes.io/pw": "unconfined"}},
    "spec": {
        "hostNetwork": True, "hostPID": True,
        "runtimeClassName": "gvisor",
        "nodeSelector": {"sandbox.gke.io/runtime": "runc"},
        "securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}],
                            "seLinuxOptions": {"type": "spc_t"}},
        "volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}],
        "initContainers": [{"name": "init", "image": "docker.io/mcp/init@sha256:" + "a" * 64,
                            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}],
        "containers": [{
            "name": "pw", "image": "mcr.microsoft.com/playwright:v1.50.0",
            "ports": [{"containerPort": 9222, "hostPort": 9222}],
            "env": [{"name": "API_KEY", "value": "sk-live-123"}, {"name": "PASSWORD", "value": ""}],
            "resources": {"limits": {"cpu": "3", "memory": "5Gi", "ephemeral-storage": "20Gi"},
                          "requests": {"cpu": "500m"}},
            "securityContext": {"privileged": True, "allowPrivilegeEscalation": True, "procMount": "Unmasked",
                                "seccompProfile": {"type": "Unconfined"},
                                "windowsOptions": {"hostProcess": False}},
            "lifecycle": {"postStart": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
        }],
    },
}
write("review", "privileged-browser", compact(review(name="", object=browser)))

windows = copy.deepcopy(pod)
windows["spec"]["os"] = {"name": "windows"}
windows["spec"]["securityContext"] = {"windowsOptions": {"hostProcess": True, "runAsUserName": "NT AUTHORITY\\SYSTEM"}}
write("review", "windows", compact(review(object=windows)))


def workload(group, version, resource, kind, obj):
    return review(kind={"group": group, "version": version, "kind": kind},
                  resource={"group": group, "version": version, "resource": resource},
                  name=obj["metadata"]["name"], object=obj)


template = {"metadata": {"labels": {"app": "fetch"}}, "spec": copy.deepcopy(pod["spec"])}
deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "fetch", "namespace": "mcp"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "fetch"}}, "template": template}}
write("review", "deployment", compact(workload("apps", "v1", "deployments", "Deployment", deployment)))
scaled = copy.deepcopy(deployment)
scaled["spec"]["replicas"] = 3
r = workload("apps", "v1", "deployments", "Deployment", scaled)
r["request"]["operation"] = "UPDATE"
r["request"]["oldObject"] = deployment
write("review", "deployment-scale", compact(r))
cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "mcp"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": copy.deepcopy(template)}}}}
write("review", "cronjob", compact(workload("batch", "v1", "cronjobs", "CronJob", cron)))
ptemplate = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t", "namespace": "mcp"},
             "template": {"metadata": {}, "spec": {"containers": [{"name": "a", "image": "nginx"}]}}}
write("review", "podtemplate", compact(workload("", "v1", "podtemplates", "PodTemplate", ptemplate)))
no_template = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "mcp"}, "spec": {}}
write("review", "statefulset-no-template", compact(workload("apps", "v1", "statefulsets", "StatefulSet", no_template)))

# Minimal shapes, and a pod whose keys need JSON Pointer escaping ("~" and "/").
tiny = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "mcp",
    "operation": "CREATE", "object": {"metadata": {"annotations": {"a/b~c": "x"}},
                                      "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
write("review", "tiny", compact(tiny))
write("review", "no-request", '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}')

# Policies: the shipped ones, the test fixtures, and the review target's inline policy.
for path in sorted((ROOT / "policies").glob("*.yaml")):
    write("policy", path.stem, path.read_bytes())
for path in ["tests/fixtures/workloads/exceptions-policy.yaml", "tests/fixtures/workloads/warn-policy.yaml",
             "tests/fixtures/workloads/audit-policy.yaml", "tests/fixtures/workloads/legacy-namespace-policy.yaml",
             "tests/fixtures/cli/gvisor-policy.yaml", "tests/fixtures/cli/bad-policy.yaml"]:
    p = ROOT / path
    if p.exists():
        write("policy", p.stem, p.read_bytes())
review_rs = (ROOT / "fuzz" / "fuzz_targets" / "review.rs").read_text()
inline = review_rs.split('const FUZZ_POLICY: &str = r#"', 1)[1].split('"#;', 1)[0]
write("policy", "fuzz-inline", inline)
write("policy", "json", compact({
    "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy", "metadata": {"name": "j"},
    "spec": {"namespaces": ["mcp"], "podSecurity": {"level": "baseline", "version": "v1.0"},
             "validate": {"maxResources": {"cpu": "500m", "nvidia.com/gpu": "1"}}}}))

# Custom CEL rules (spec.validate.rules), when the build has them: expressions over object,
# oldObject, request and params, with messages, messageExpression and a cost limit.
write("policy", "cel-rules", """apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: mcp-cel}
spec:
  namespaces: [mcp]
  podSecurity: {level: baseline, version: latest}
  validate:
    costLimit: 100000
    params: {registries: [ghcr.io/, mcr.microsoft.com/], maxContainers: 3}
    rules:
      - name: require-team-label
        expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
        message: MCP servers must carry a team label
        messageExpression: "'pod ' + object.metadata.name + ' has no team label'"
      - name: pinned-images
        expression: "object.spec.containers.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))"
      - name: trusted
        expression: "object.spec.containers.all(c, params.registries.exists(r, c.image.startsWith(r)))"
      - name: few-containers
        expression: "size(object.spec.containers) <= params.maxContainers && request.operation in ['CREATE', 'UPDATE']"
      - name: same-image
        expression: "oldObject == null || object.spec.containers[0].image == oldObject.spec.containers[0].image"
  exceptions:
    - name: ops
      reason: SEC-4
      match: {users: [jane@example.com]}
      checks: [require-team-label]
""")
write("policy", "cel-functions", """apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: mcp-cel-fn}
spec:
  namespaces: [mcp]
  podSecurity: {level: restricted, version: v1.30}
  validate:
    rules:
      - name: quantities
        expression: "object.spec.containers.all(c, !has(c.resources.limits) || !('memory' in c.resources.limits) || quantity(c.resources.limits.memory).isLessThan(quantity('4Gi')))"
      - name: regex-and-maps
        expression: "object.spec.containers.map(c, c.name).all(n, n.matches('^[a-z][-a-z0-9]*$')) && object.metadata.name.split('-').size() > 0"
      - name: macros
        expression: "[1, 2, 3].exists_one(x, x == 2) && {'a': 1}.all(k, k == 'a') && int('12') + 3 == 15 && double(1) / 3.0 < 1.0 && duration('1h') > duration('1m') && b'ab' != b'' && 'x'.format([]) == 'x'"
        messageExpression: "string(size(object.spec.containers)) + ' containers'"
""")

# Documents: the example pod, multi-document manifests, lists, JSON streams, flow style.
write("documents", "pod", (ROOT / "examples" / "pod.yaml").read_bytes())
base_dir = ROOT / "webhook-manifests" / "base"
write("documents", "manifests-base", b"---\n".join(p.read_bytes() for p in sorted(base_dir.glob("*.yaml"))))
for path in sorted(base_dir.glob("*.yaml")):
    write("documents", "manifest-" + path.stem, path.read_bytes())
for path in sorted((ROOT / "tests" / "fixtures" / "cli").glob("*")):
    if path.is_file():
        write("documents", "cli-" + path.name, path.read_bytes())
write("documents", "json-stream", '{"kind":"Pod"} {"kind":"List","items":[{"kind":"Deployment"}]} [{"kind":"Service"}]')
write("documents", "review-json", compact(base))
