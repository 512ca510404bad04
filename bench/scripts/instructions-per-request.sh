#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: a measure that
# does not move with the machine's load, unlike requests per CPU-second on
# a shared VM (whose rounds spread by 20% for one build). Compares a plain
# ROOT with a [[site]] of twenty rules (the configuration of
# `make bench-rules`, bench/src/rules.rs), for GET /13.txt on one
# keep-alive connection, pipelined 50 at a time.
#
#   bench/scripts/instructions-per-request.sh [BINARY]
#
# Needs valgrind and python3. Each case runs the server twice, for 1,000
# and for 11,000 requests, and reports the difference over 10,000: what
# start-up and shutdown cost cancels out. The kernel's share (the socket
# calls) is not counted: valgrind sees user space only.
set -euo pipefail
binary=${1:-target/release/oneloop}
command -v valgrind >/dev/null || { echo "needs valgrind (apt install valgrind)"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/site"
printf 'Hello, world!' > "$work/site/13.txt"
rules() {
    printf '[[site]]\nhosts = ["127.0.0.1", "localhost"]\nroot = "%s"\n\n' "$work/site"
    printf '[[site.rule]]\npath = "/*"\nheaders = { "X-Content-Type-Options" = "nosniff", "Referrer-Policy" = "strict-origin-when-cross-origin", "Cache-Control" = "no-cache" }\n\n'
    printf '[[site.rule]]\npath = "/assets/*"\nheaders = { "Cache-Control" = "public, max-age=31536000, immutable" }\n\n'
    printf '[[site.rule]]\npath = "/app/*"\ntry-files = ["{path}", "/app/index.html"]\n\n'
    printf '[[site.rule]]\npath = "/api/*"\ncors-origins = ["https://app.example.org"]\n\n'
    printf '[[site.rule]]\npath = "/files/*"\nlisting = true\n\n'
    printf '[[site.rule]]\npath = "/.well-known/*"\nhidden = true\n\n'
    printf '[[site.rule]]\npath = "/raw/*"\ncompress = false\n\n'
    for n in $(seq 1 13); do
        printf '[[site.rule]]\npath = "/old/post-%d"\nredirect = "/blog/2026/{rest}post-%d/"\nstatus = 308\n\n' "$n" "$n"
    done
}
rules > "$work/rules.toml"
cat > "$work/client.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
request = b"GET /13.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
got, sent, buf = 0, 0, b""
while got < n:
    k = min(50, n - sent)
    s.sendall(request * k)
    sent += k
    while got < sent:
        data = s.recv(65536)
        if not data:
            raise SystemExit("the server closed the connection")
        buf += data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            fields = buf[:end].decode().lower().split("\r\n")
            length = int(next(f.split(":")[1] for f in fields if f.startswith("content-length")))
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            got += 1
PY
# Total instructions of one server run that answers $1 requests.
count() {
    local n=$1; shift
    local port=$((20000 + RANDOM % 20000))
    valgrind --tool=callgrind --callgrind-out-file="$work/out.$n" "$binary" "$@" --port "$port" --quiet 2>/dev/null &
    local server=$!
    for _ in $(seq 1 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
        sleep 0.1
    done
    python3 "$work/client.py" "$port" "$n"
    kill -TERM "$server"; wait "$server" 2>/dev/null || true
    awk '/^(summary|totals):/ {print $2; exit}' "$work/out.$n"
}
for case in plain rules; do
    if [ "$case" = plain ]; then args=("$work/site"); else args=(--config "$work/rules.toml"); fi
    small=$(count 1000 "${args[@]}")
    large=$(count 11000 "${args[@]}")
    echo "$case: $(( (large - small) / 10000 )) instructions per request"
done
