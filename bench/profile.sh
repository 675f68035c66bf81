#!/usr/bin/env bash
# Instruction profiles for bench/NOTES.md: runs a small crawl (PROFILES,
# default 2000) with the engine, one worker and the itemsaver under
# valgrind's callgrind, and fetchparse (fetch+parse without RPC) the same
# way, against a native demo site. Writes callgrind.out.* files to OUT_DIR
# (default /tmp/crawler-profile) and prints the top inclusive costs of each.
# perf would be quicker, but needs hardware counters, which VMs often lack.
#
#   bash bench/profile.sh    # builds with the `profiling` profile (release + symbols)
set -euo pipefail
cd "$(dirname "$0")/.."
profiles=${PROFILES:-2000}
out_dir=${OUT_DIR:-/tmp/crawler-profile}
cargo build --profile profiling --quiet --bins
bin=${CARGO_TARGET_DIR:-target}/profiling
mkdir -p "$out_dir"
rm -f "$out_dir"/callgrind.out.* "$out_dir"/*.out "$out_dir"/*.pid

cleanup() {
    local pidfile
    for pidfile in "$out_dir"/*.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cg NAME: the valgrind command line that profiles into callgrind.out.NAME.
cg() { echo valgrind --tool=callgrind --callgrind-out-file="$out_dir/callgrind.out.$1"; }
# start NAME CMD...: like scripts/bench.sh, but the command is given whole.
start() {
    local name=$1 out="$out_dir/$1.out"
    shift
    "$@" >"$out" 2>"$out.log" &
    echo $! >"$out_dir/$name.pid"
    for _ in $(seq 1 600); do
        if grep -q "listening on" "$out" 2>/dev/null; then
            sed -n 's/.*listening on \(http:\/\/\)\{0,1\}\([^ /]*\).*/\2/p' "$out" | head -n 1
            return 0
        fi
        sleep 0.1
    done
    echo "profile: $name did not start" >&2
    return 1
}

site=$(start demosite "$bin/demosite" --port 0 --profiles "$profiles")
$(cg fetchparse) "$bin/fetchparse" --site "http://$site/" --concurrency 100
w=$(start worker $(cg worker) "$bin/worker" --port 0 --allow_internal 127.0.0.1)
saver=$(start itemsaver $(cg itemsaver) "$bin/itemsaver" --port 0 --data_dir "$out_dir/items")
$(cg engine) "$bin/engine" --seed "http://$site/" --parser city_list --worker_hosts "$w" \
    --itemsaver_host "$saver" --failures_file "$out_dir/failures.jsonl" 2>"$out_dir/engine.log"
"$bin/itemsaver" count --itemsaver_host "$saver"
# valgrind writes its file when the program exits: stop them, then wait.
kill "$(cat "$out_dir/worker.pid")" "$(cat "$out_dir/itemsaver.pid")"
for _ in $(seq 1 100); do
    [[ -s $out_dir/callgrind.out.worker && -s $out_dir/callgrind.out.itemsaver ]] && break
    sleep 0.2
done
sleep 1
for name in fetchparse worker itemsaver engine; do
    echo "== $name"
    callgrind_annotate --inclusive=yes "$out_dir/callgrind.out.$name" 2>/dev/null | head -n 60
done >"$out_dir/summary.txt"
echo "profile: callgrind files and summary.txt in $out_dir"
