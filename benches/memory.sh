#!/usr/bin/env bash
# mcpguard's peak memory per endpoint × operation × review size (README, "Memory and limits").
#
#   benches/memory.sh                 # builds the release binary if needed; ~3 minutes
#   MCPGUARD_BIN=path CONCURRENT=64 benches/memory.sh
#
# Each cell starts a fresh `mcpguard serve` (release, default limits, --cluster off), sends
# one review three times in a row over HTTPS, reads VmHWM (peak RSS), then sends the same
# review CONCURRENT times at once (default: the --max-concurrent-reviews default, 64) and
# reads VmHWM again. Reviews are the example pod padded to 1 MB, 3 MiB and the 7 MiB body
# cap in two shapes: `env`, environment variables in the first container (an ordinary, if
# huge, pod: every entry is decoded and judged), and `dense`, an unknown field holding
# [0,0,0,…], the most JSON values per byte anyone can POST. UPDATE reviews carry the
# object twice (object and oldObject, with the image changed so that it is judged).
# Prints a markdown table on stdout (also target/memory-report.md).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${MCPGUARD_BIN:-target/release/mcpguard}
CONCURRENT=${CONCURRENT:-64}
if [ -z "${MCPGUARD_BIN:-}" ]; then
    cargo build --release --bin mcpguard >&2
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "memory.sh: needs $tool" >&2; exit 2; }
done

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
"$BIN" certs generate --out "$work" --san 127.0.0.1 >/dev/null

# The review bodies: $work/<shape>-<operation>-<size>.json
python3 - "$work" <<'PY'
import copy, json, sys
out = sys.argv[1]
base = json.load(open("examples/admission-review.json"))
SIZES = {"typical": 0, "1MB": 1_000_000, "3MiB": 3 * 1024 * 1024, "cap": 7 * 1024 * 1024}

def review(shape, update, pads):
    r = copy.deepcopy(base)
    container = r["request"]["object"]["spec"]["containers"][0]
    if shape == "env":
        container.setdefault("env", []).extend(
            {"name": f"PAD_{i:07}", "value": "v"} for i in range(pads))
    else:
        container["x-pad"] = [0] * pads
    if update:
        old = copy.deepcopy(r["request"]["object"])
        old["spec"]["containers"][0]["image"] = "ghcr.io/github/github-mcp-server:v0.19.0"
        r["request"]["operation"] = "UPDATE"
        r["request"]["oldObject"] = old
    return json.dumps(r, separators=(",", ":")).encode()

for shape in ("env", "dense"):
    for operation, update in (("CREATE", False), ("UPDATE", True)):
        for label, target in SIZES.items():
            body = review(shape, update, 0)
            if target > len(body):
                per = (len(review(shape, update, 1000)) - len(body)) / 1000
                pads = int((target - len(body)) / per)
                body = review(shape, update, pads)
                while len(body) > target:
                    pads -= max(1, int((len(body) - target) / per + 1))
                    body = review(shape, update, pads)
            open(f"{out}/{shape}-{operation}-{label}.json", "wb").write(body)
PY

port=18443
vm() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
post() { # path file -> HTTP status
    curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" -H 'Content-Type: application/json' \
        -H 'Expect:' --max-time 60 --data-binary "@$2" "https://127.0.0.1:$port$1" || echo "curl-error"
}
tally() { sort | uniq -c | awk '{printf "%s%s×%s", (NR > 1 ? ", " : ""), $1, $2}'; }

{
echo "| padding | endpoint | operation | body bytes | answers | idle MiB | peak MiB, 3 in a row | peak MiB, $CONCURRENT at once | answers at once |"
echo "|---|---|---|---:|---|---:|---:|---:|---|"
} | tee "$work/table"
for shape in env dense; do
    for operation in CREATE UPDATE; do
        for size in typical 1MB 3MiB cap; do
            file="$work/$shape-$operation-$size.json"
            bytes=$(stat -c %s "$file")
            for path in /mutate /validate; do
                port=$((port + 1))
                "$BIN" serve --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
                    --listen "127.0.0.1:$port" --probe-listen "127.0.0.1:$((port + 1000))" \
                    --cluster off --drain-seconds 0 2>>"$work/server.log" &
                server_pid=$!
                for _ in $(seq 100); do
                    curl -sf "http://127.0.0.1:$((port + 1000))/readyz" >/dev/null && break
                    sleep 0.1
                done
                idle=$(vm VmRSS)
                answers=$(for _ in 1 2 3; do post "$path" "$file"; echo; done | tally)
                sequential=$(vm VmHWM)
                for i in $(seq "$CONCURRENT"); do
                    post "$path" "$file" >"$work/answer.$i" &
                done
                wait $(jobs -p | grep -v "^$server_pid\$")
                concurrent=$(vm VmHWM)
                at_once=$(for i in $(seq "$CONCURRENT"); do cat "$work/answer.$i"; echo; done | tally)
                kill "$server_pid"
                wait "$server_pid" 2>/dev/null || true
                server_pid=
                echo "| $shape | $path | $operation | $bytes | $answers | $idle | $sequential | $concurrent | $at_once |" | tee -a "$work/table"
            done
        done
    done
done
mkdir -p target
cp "$work/table" target/memory-report.md
