#!/usr/bin/env bash
# The benchmark (issue 7) in one command: builds in release mode, starts the
# demo site, measures the two ceilings (the site serving wrk, and fetch+parse
# in one process without RPC), then crawls the whole site with two workers,
# the itemsaver (embedded store, fresh temp dir) and the engine. Prints
# pages/s and items/s, CPU seconds per 1,000 pages and peak memory of each
# process, and the ratios to the ceilings; appends them to bench/results.md.
# Exits non-zero (FAILED) if the store does not end with one item per profile.
#
#   bash scripts/bench.sh                        # 20,000 profiles
#   PROFILES=2000 bash scripts/bench.sh          # a quick run
#   BENCH_TIMEOUT=900 WRK_SECS=10 bash scripts/bench.sh
#
# Targets, reported, never asserted: at least 5,000 pages/s end to end, and
# at least 70% of the in-process fetch+parse rate.
set -euo pipefail
cd "$(dirname "$0")/.."

profiles=${PROFILES:-20000}
timeout_secs=${BENCH_TIMEOUT:-600}
wrk_secs=${WRK_SECS:-5}
results=bench/results.md
bin=${CARGO_TARGET_DIR:-target}/release

cargo build --release --quiet --bins
if [[ ! -x $bin/fetchparse ]]; then
    echo 'bench: no fetchparse binary: add "bench" to the workspace members in Cargo.toml' >&2
    exit 1
fi
if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi

run_dir=$(mktemp -d)
# Servers are started inside $(...), a subshell: a pid array set there would
# be lost, and they are not children of this shell (no `wait`). So each one
# leaves a pid file, and cleanup stops them by those pids and polls.
cleanup() {
    local pidfile pid
    for pidfile in "$run_dir"/*.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pidfile in "$run_dir"/*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME ARGS...: runs a server on an ephemeral port, records its pid in
# $run_dir/NAME.pid (NAME may carry a suffix: worker.1 runs `worker`) and
# prints the address from its "listening on" line.
start() {
    local name=$1 out="$run_dir/$1.out"
    shift
    "$bin/${name%%.*}" "$@" >"$out" 2>"$out.log" &
    echo $! >"$run_dir/$name.pid"
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$out" 2>/dev/null; then
            sed -n 's/.*listening on \(http:\/\/\)\{0,1\}\([^ /]*\).*/\2/p' "$out" | head -n 1
            return 0
        fi
        sleep 0.1
    done
    echo "bench: $name did not start; its log:" >&2
    cat "$out.log" >&2
    return 1
}

# cpu_ticks PID: user + system time so far, in clock ticks (fields 14, 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# hwm_kb PID: peak resident memory so far.
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

load0=$(cut -d' ' -f1-3 /proc/loadavg)
site=$(start demosite --port 0 --profiles "$profiles")
site_pid=$(cat "$run_dir/demosite.pid")
site_pages=$(sed -n 's/.* pages=\([0-9]*\).*/\1/p' "$run_dir/demosite.out")
echo "bench: site http://$site/ ($profiles profiles, $site_pages pages), $(nproc) cores"

# Ceiling (a): how fast the site serves pages to a load tool.
echo "bench: ceiling (a), wrk -t2 -c64 -d${wrk_secs}s over all profile pages"
PROFILES=$profiles wrk -t2 -c64 -d"${wrk_secs}s" -s bench/profiles.lua "http://$site/" >"$run_dir/wrk.out"
wrk_rate=$(awk '/^Requests\/sec:/ { print $2 }' "$run_dir/wrk.out")
if grep -q "Non-2xx" "$run_dir/wrk.out"; then
    echo "bench: warning: wrk got error responses:" >&2
    cat "$run_dir/wrk.out" >&2
fi

# Ceiling (b): fetch+parse of the whole site in one process, no RPC.
echo "bench: ceiling (b), fetch+parse in one process (fetchparse, 100 at once)"
fp_line=$(timeout "$timeout_secs" "$bin/fetchparse" --site "http://$site/" --concurrency 100 | tail -n 1)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
fp_pages=$(field pages "$fp_line")
fp_rate=$(field pages_per_sec "$fp_line")
fp_cpu=$(field cpu_secs "$fp_line")
[[ $fp_pages == "$site_pages" ]] || echo "bench: warning: fetchparse saw $fp_pages of $site_pages pages: $fp_line" >&2

# The crawl itself.
w1=$(start worker.1 --port 0)
w2=$(start worker.2 --port 0)
saver=$(start itemsaver --port 0 --data_dir "$run_dir/items")
servers=(demosite worker.1 worker.2 itemsaver)
declare -A cpu0
for name in "${servers[@]}"; do cpu0[$name]=$(cpu_ticks "$(cat "$run_dir/$name.pid")"); done

echo "bench: crawl, engine -> workers $w1 $w2 -> itemsaver $saver (timeout ${timeout_secs}s)"
t0=$(date +%s.%N)
set +e
timeout -k 10 "$timeout_secs" /usr/bin/time -f "%U %S %M" -o "$run_dir/engine.time" \
    "$bin/engine" --seed "http://$site/" --parser city_list \
    --worker_hosts "$w1,$w2" --itemsaver_host "$saver" --per_host_concurrency 200 \
    --failures_file "$run_dir/failures.jsonl" >"$run_dir/engine.out" 2>"$run_dir/engine.log"
engine_rc=$?
set -e
t1=$(date +%s.%N)
# Read the servers' counters now, before anything stops them.
declare -A cpu hwm
for name in "${servers[@]}"; do
    pid=$(cat "$run_dir/$name.pid")
    cpu[$name]=$(awk -v a="$(cpu_ticks "$pid")" -v b="${cpu0[$name]}" -v hz="$hz" 'BEGIN { print (a - b) / hz }')
    hwm[$name]=$(hwm_kb "$pid")
done
cat "$run_dir/engine.out"
if [[ -s $run_dir/engine.time ]]; then
    read -r eu es ekb < <(tail -n 1 "$run_dir/engine.time")
    cpu[engine]=$(awk -v u="$eu" -v s="$es" 'BEGIN { print u + s }')
    hwm[engine]=$ekb
fi

pages=$(sed -n 's/^  pages  *\([0-9]*\).*/\1/p' "$run_dir/engine.out")
items=$(sed -n 's/^  items saved  *\([0-9]*\).*/\1/p' "$run_dir/engine.out")
engine_rate=$(sed -n 's/^  pages .*(\([0-9.]*\) pages\/s).*/\1/p' "$run_dir/engine.out")
stored=$("$bin/itemsaver" count --itemsaver_host "$saver" 2>"$run_dir/count.log" | grep -o '[0-9]*' | head -n 1 || true)
pages=${pages:-0} items=${items:-0} stored=${stored:-unknown}

verdict=ok
problems=()
[[ $engine_rc == 0 ]] || problems+=("engine exited with status $engine_rc (124: killed by the ${timeout_secs}s timeout)")
[[ $stored == "$profiles" ]] || problems+=("the store holds $stored items, not $profiles")
[[ $pages == "$site_pages" ]] || problems+=("the crawl fetched $pages of $site_pages pages")
((${#problems[@]} == 0)) || verdict=FAILED

# calc EXPR: awk arithmetic, for the floats bash cannot do.
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
wall=$(calc "$t1 - $t0" 2)
rate=$(calc "$pages / $wall")
item_rate=$(calc "$items / $wall")
per_1k() { if ((pages > 0)) && [[ -n ${1:-} ]]; then calc "$1 * 1000 / $pages" 3; else echo "?"; fi; }
pct() { if [[ -n ${2:-} ]] && [[ $2 != 0 ]]; then calc "100 * $1 / $2" 0; else echo "?"; fi; }
meets() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi; }

report() {
    echo "- end to end: $pages pages, $items items in ${wall}s (engine process wall time):" \
        "**$rate pages/s**, $item_rate items/s; the engine's summary says ${engine_rate:-?} pages/s"
    echo "- final item count (itemsaver count): $stored of $profiles profiles: **$verdict**"
    for p in "${problems[@]}"; do echo "  - $p"; done
    echo "- ceiling (a), demosite serving wrk (-t2 -c64, ${wrk_secs}s, all profiles): $wrk_rate pages/s;" \
        "end to end is $(pct "$rate" "$wrk_rate")% of it"
    echo "- ceiling (b), fetch+parse in one process without RPC: $fp_rate pages/s ($fp_pages pages," \
        "$(per_1k "$fp_cpu") CPU s per 1,000 pages, site excluded); end to end is **$(pct "$rate" "$fp_rate")%** of it"
    echo "- targets: >= 5,000 pages/s end to end: $(meets "$rate >= 5000");" \
        ">= 70% of fetch+parse: $(meets "$rate >= 0.7 * ${fp_rate:-0}")"
    echo
    echo "| process | CPU s | CPU s / 1,000 pages | peak RSS (VmHWM) |"
    echo "|---|---:|---:|---:|"
    local total=0
    for name in engine worker.1 worker.2 itemsaver demosite; do
        local c=${cpu[$name]:-} m=${hwm[$name]:-}
        total=$(calc "$total + ${c:-0}" 2)
        echo "| $name | ${c:-?} | $(per_1k "$c") | $([[ -n $m ]] && calc "$m / 1024" 1 || echo "?") MiB |"
    done
    echo "| all | $total | $(per_1k "$total") | |"
}

summary=$(report)
echo
echo "$summary"
if [[ ! -f $results ]]; then
    printf '# Benchmark results\n\nAppended by `bash scripts/bench.sh`, newest last. See NOTES.md for where the time goes.\n' >"$results"
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git --no-optional-locks status --porcelain 2>/dev/null) ]]; then commit="$commit dirty"; fi
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) x $model, $profiles profiles"
    echo
    echo "Load average before the run: $load0 (anything else running skews the figures)."
    echo
    echo "$summary"
} >>"$results"
echo
echo "bench: appended to $results"
[[ $verdict == ok ]]
