#!/usr/bin/env bash
# A complete local crawl in one command: builds the binaries, starts the demo
# site, two workers and the itemsaver (embedded store in ./data/demo), runs the
# engine to the end, prints its summary and stops everything it started.
#
#   PROFILES=5000 bash scripts/demo.sh     # a bigger site (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."

profiles=${PROFILES:-2000}
echo "demo: building the release binaries (a first build takes several minutes on 2 cores; later ones seconds)"
cargo build --release --bins
bin=target/release
run_dir=$(mktemp -d)
data_dir=data/demo
rm -rf "$data_dir"
mkdir -p "$data_dir"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

# start VAR NAME ARGS...: runs a server on an ephemeral port and sets VAR to
# the address from its "listening on" line. (Not `$(start ...)`: a command
# substitution is a subshell, and the pid would never reach `pids`.)
start() {
    local var=$1 name=$2 out="$run_dir/$2.$RANDOM.out"
    shift 2
    "$bin/$name" "$@" >"$out" 2>"$out.log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$out" 2>/dev/null; then
            printf -v "$var" '%s' "$(sed -n 's/.*listening on \(http:\/\/\)\{0,1\}\([^ /]*\).*/\2/p' "$out" | head -n 1)"
            return 0
        fi
        sleep 0.1
    done
    echo "demo: $name did not start; its log:" >&2
    cat "$out.log" >&2
    return 1
}

start site demosite --port 0 --profiles "$profiles"
# The site is on this machine: only the workers' own setting lets them fetch
# a loopback address.
start w1 worker --port 0 --allow_internal 127.0.0.1
start w2 worker --port 0 --allow_internal 127.0.0.1
start saver itemsaver --port 0 --data_dir "$data_dir"
echo "demo: site http://$site/ ($profiles profiles), workers $w1 $w2, itemsaver $saver (store in $data_dir)"

# The demo site is our own, on this machine: lift the per-host politeness
# limits that protect other people's sites. The dashboard is served on a
# free port; the engine logs its address ("dashboard at http://...").
echo "demo: crawling; the engine's live dashboard address is in its first log lines"
"$bin/engine" --seed "http://$site/" --parser city_list \
    --worker_hosts "$w1,$w2" --itemsaver_host "$saver" --per_host_concurrency 100 \
    --metrics_addr 127.0.0.1:0 --dashboard_linger_ms "${DASHBOARD_LINGER_MS:-3000}"

echo "demo: the itemsaver reports $("$bin/itemsaver" count --itemsaver_host "$saver") items stored"
cat <<EOF
demo: what it stored is in $data_dir. To search it in a browser and export it:
  $bin/itemsaver --port 1234 --data_dir $data_dir --http_addr 127.0.0.1:8081 &
  # open http://127.0.0.1:8081/?q=city:北京 (the same queries as 'itemsaver search')
  $bin/itemsaver export --itemsaver_host :1234 --out data/demo.jsonl              # every item, JSON lines
  $bin/itemsaver export --itemsaver_host :1234 --format csv --out data/demo.csv   # or CSV, a column per field
  kill %1
EOF
