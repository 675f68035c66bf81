#!/usr/bin/env bash
# Starts a local Elasticsearch-API server (noida-db, from PyPI) for the
# Elasticsearch tests, on 127.0.0.1 and a free port, in the background.
#
#   source scripts/noida.sh     # exports CRAWLER_TEST_ES_URL, NOIDA_PID, NOIDA_DIR
#   bash scripts/noida.sh       # prints CRAWLER_TEST_ES_URL=http://127.0.0.1:PORT
#
# Stop it with `kill "$NOIDA_PID"` (the pid is printed too). Its data and
# log live in a fresh temporary directory, NOIDA_DIR, printed as well; remove
# it when done.

noida_main() {
    local version=0.2.3
    if ! python3 -c 'import noida_db' 2>/dev/null ||
        [ "$(python3 -m pip show noida-db 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]; then
        python3 -m pip install --quiet --disable-pip-version-check "noida-db==$version" || return 1
    fi
    local bin
    bin="$(python3 -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')" || return 1
    [ -x "$bin" ] || { echo "noida.sh: no executable at $bin" >&2; return 1; }

    local port dir
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/noida.XXXXXX")"
    "$bin" start --data-dir "$dir/data" --host 127.0.0.1 --only elasticsearch \
        --elasticsearch-port "$port" </dev/null >"$dir/log" 2>&1 &
    NOIDA_PID=$!

    local url="http://127.0.0.1:$port"
    local tries=0
    until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "$url/" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ! kill -0 "$NOIDA_PID" 2>/dev/null || [ "$tries" -ge 300 ]; then
            echo "noida.sh: Elasticsearch API did not come up on $url; log:" >&2
            cat "$dir/log" >&2
            kill "$NOIDA_PID" 2>/dev/null
            return 1
        fi
        sleep 0.1
    done
    NOIDA_DIR=$dir
    export CRAWLER_TEST_ES_URL="$url" NOIDA_PID NOIDA_DIR
    echo "noida-db $version answering at $url (pid $NOIDA_PID, data and log in $dir)" >&2
    echo "CRAWLER_TEST_ES_URL=$url"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    noida_main
else
    noida_main >/dev/null
fi
