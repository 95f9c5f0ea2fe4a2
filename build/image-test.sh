#!/usr/bin/env bash
# Runs the image built by build/image.sh as the manifests run it, and checks what it serves.
#
# The container gets the Deployment's (dist/mcpguard.yaml) args, env, mounts and security
# context: read-only root filesystem, every capability dropped, the non-root numeric user,
# no privilege escalation (podman's default seccomp profile is RuntimeDefault). There is no
# cluster here, so the test overrides exactly these settings, and prints them:
#   MCPGUARD_CLUSTER=off             manifests: required; there is no API server to reach
#   MCPGUARD_CERT_MANAGEMENT=files   manifests: self, which stores the certificate in a
#                                    Secret through the API server; instead the Secret's
#                                    mount point gets a certificate from `certs generate`
#   MCPGUARD_LISTEN, MCPGUARD_PROBE_LISTEN   manifests: 0.0.0.0:8443 and :8080; the test runs
#                                    with --network host, so it takes free loopback ports
#   MCPGUARD_POD_NAME, MCPGUARD_POD_NAMESPACE   the downward API values the kubelet fills in
# Leader election and the controller stay on as in the manifests; without an API server
# they have nothing to lead.
#
#   MCPGUARD_BINARY=target/x86_64-unknown-linux-gnu/release/mcpguard build/image-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

image="$(tr -d '[:space:]' < IMAGE)"
binary="${MCPGUARD_BINARY:-target/x86_64-unknown-linux-gnu/release/mcpguard}"
engine="${CONTAINER_ENGINE:-podman}"
if [ "${engine}" != docker ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="${PWD}/build/containers.conf"
fi
network=(--network host)
name="mcpguard-image-test-$$"
work="$(mktemp -d)"
cleanup() {
  "${engine}" rm --force "${name}" >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap cleanup EXIT
fail() { echo "image test FAILED: $*" >&2; "${engine}" logs "${name}" >&2 2>/dev/null || true; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port="$(free_port)"
probe_port="$(free_port)"

# The Deployment's container, and the podman flags its security context asks for.
python3 - "${work}" > "${work}/container.env" <<'PY'
import json, sys, yaml
work = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open("dist/mcpguard.yaml")) if d]
deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mcpguard")
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
security = container["securityContext"]
assert security["readOnlyRootFilesystem"] is True, "--read-only"
assert security["capabilities"] == {"drop": ["ALL"]}, "--cap-drop=ALL"
assert security["allowPrivilegeEscalation"] is False, "no-new-privileges"
assert security["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
user = f'{pod["securityContext"]["runAsUser"]}:{pod["securityContext"]["runAsGroup"]}'
assert user == "65532:65532", user
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
with open(f"{work}/args", "w") as f:
    f.write("\n".join(container["args"]) + "\n")
with open(f"{work}/mounts", "w") as f:
    f.write(f'{mounts["tls"]}\n{mounts["policy"]}\n')
for env in container["env"]:
    if "value" in env:
        print(f'{env["name"]}={env["value"]}')
PY
mapfile -t args < "${work}/args"
{ read -r tls_mount; read -r policy_mount; } < "${work}/mounts"
overrides=(
  "MCPGUARD_CLUSTER=off"
  "MCPGUARD_CERT_MANAGEMENT=files"
  "MCPGUARD_LISTEN=127.0.0.1:${https_port}"
  "MCPGUARD_PROBE_LISTEN=127.0.0.1:${probe_port}"
  "MCPGUARD_POD_NAME=${name}"
  "MCPGUARD_POD_NAMESPACE=mcpguard-system"
)
printf '%s\n' "${overrides[@]}" >> "${work}/container.env"
echo "== image test: manifests' args: ${args[*]}; overridden env: ${overrides[*]}"

# The Secret's and the ConfigMap's contents, owned by the container's user as the kubelet
# makes them readable to the pod (fsGroup).
"${binary}" certs generate --service mcpguard --namespace mcpguard-system --san 127.0.0.1 \
  --out "${work}/tls" >/dev/null
mkdir "${work}/policy" "${work}/copy"
cp webhook-manifests/base/policy/mcp-restricted.yaml "${work}/policy/"
chown -R 65532:65532 "${work}/tls" "${work}/policy" "${work}/copy"

run_flags=(
  "${network[@]}" --read-only --cap-drop=ALL --user 65532:65532
  --security-opt no-new-privileges
)
"${engine}" run --detach --name "${name}" "${run_flags[@]}" \
  --env-file "${work}/container.env" \
  --volume "${work}/tls:${tls_mount}:ro" --volume "${work}/policy:${policy_mount}:ro" \
  "${image}" "${args[@]}" >/dev/null

# Ready: the kubelet's readinessProbe, polled as it would be (every second, up to a minute).
ready=""
for _ in $(seq 60); do
  ready="$(curl --silent --output /dev/null --write-out '%{http_code}' "http://127.0.0.1:${probe_port}/readyz" || true)"
  [ "${ready}" = 200 ] && break
  [ "$("${engine}" inspect --format '{{.State.Running}}' "${name}")" = true ] || fail "the container exited"
  sleep 1
done
[ "${ready}" = 200 ] || fail "/readyz answered ${ready}"
[ "$(curl --silent "http://127.0.0.1:${probe_port}/readyz")" = ready ] || fail "/readyz body"

# /mutate over HTTPS, verified against the generated CA, from outside the container.
curl --silent --show-error --fail --cacert "${work}/tls/ca.crt" \
  -H 'Content-Type: application/json' --data @examples/admission-review.json \
  "https://127.0.0.1:${https_port}/mutate" > "${work}/mutate.json"
# The answer must be what the same binary's offline `mcpguard mutate` gives for the object.
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["request"]["object"], open(sys.argv[2], "w"))' \
  examples/admission-review.json "${work}/object.json"
"${binary}" mutate "${work}/object.json" > "${work}/expected.yaml"
python3 - "${work}/mutate.json" "${work}/object.json" "${work}/expected.yaml" <<'PY'
import base64, copy, json, sys, yaml
answer = json.load(open(sys.argv[1]))
obj = json.load(open(sys.argv[2]))
expected = yaml.safe_load(open(sys.argv[3]))
review = json.load(open("examples/admission-review.json"))
response = answer["response"]
assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview", answer
assert response["uid"] == review["request"]["uid"], response["uid"]
assert response["allowed"] is True, response
assert response["patchType"] == "JSONPatch", response

def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")

def apply(document, patch):
    document = copy.deepcopy(document)
    for op in patch:
        *parents, last = [unescape(t) for t in op["path"].split("/")[1:]]
        target = document
        for token in parents:
            target = target[int(token)] if isinstance(target, list) else target[token]
        if op["op"] in ("add", "replace"):
            if isinstance(target, list):
                index = len(target) if last == "-" else int(last)
                if op["op"] == "add":
                    target.insert(index, op["value"])
                else:
                    target[index] = op["value"]
            else:
                target[last] = op["value"]
        elif op["op"] == "remove":
            del target[int(last) if isinstance(target, list) else last]
        else:
            raise SystemExit(f"unexpected patch op {op}")
    return document

patch = json.loads(base64.b64decode(response["patch"]))
assert patch, "the patch is empty"
patched = apply(obj, patch)
if patched != expected:
    raise SystemExit("patched object differs from `mcpguard mutate`:\n" + json.dumps(patched, indent=1, sort_keys=True)
                     + "\n---\n" + json.dumps(expected, indent=1, sort_keys=True))
print(f"== image test: /mutate answered uid {response['uid']}, allowed, {len(patch)} patch operations equal to `mcpguard mutate`")
PY

# SIGTERM, as the kubelet stops a pod: drain, finish, exit 0.
"${engine}" stop --time 30 "${name}" >/dev/null
status="$("${engine}" inspect --format '{{.State.ExitCode}}' "${name}")"
[ "${status}" = 0 ] || fail "exit status ${status} after SIGTERM"
echo "== image test: stopped by SIGTERM with exit status ${status}"

# The init-container use: the image has no cp, so the binary copies itself out.
"${engine}" run --rm "${run_flags[@]}" --volume "${work}/copy:/copy" "${image}" \
  copy-self /copy/mcpguard >/dev/null
cmp "${work}/copy/mcpguard" "${binary}" || fail "copy-self wrote a different file"
[ "$(stat -c %a "${work}/copy/mcpguard")" = 755 ] || fail "copy-self mode $(stat -c %a "${work}/copy/mcpguard")"
# Nothing but the binary: there is no shell to run.
if "${engine}" run --rm "${run_flags[@]}" --entrypoint /bin/sh "${image}" -c true >/dev/null 2>&1; then
  fail "the image has a shell"
fi
echo "== image test: copy-self wrote an identical 0755 binary; the image has no /bin/sh"
echo "== image size: $("${engine}" image inspect --format '{{.Size}}' "${image}") bytes"
