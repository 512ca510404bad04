#!/bin/sh
# HTTP/2 on cleartext (prior knowledge), 50 connections x 10 streams, by
# h2load: oneloop (one loop), nginx (one worker, `listen ... http2`) and h2o
# (one thread), each on the same two files, rounds interleaved. Prints
# requests per second and per server CPU-second (utime + stime of the
# server's process from /proc, so the load generator's CPU is not counted).
#
#   bench/scripts/h2load-rows.sh [ROUNDS] [REQUESTS]
#
# Needs h2load (nghttp2-client), nginx and h2o; a release build of oneloop.
set -eu
ROUNDS=${1:-3}
REQUESTS=${2:-200000}
ONELOOP=${ONELOOP:-target/release/oneloop}
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir "$WORK/site"
printf 'hello, world\n' > "$WORK/site/13.txt"
head -c 4096 /dev/urandom > "$WORK/site/4k.bin"

cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $WORK/nginx-error.log;
pid $WORK/nginx.nginxpid;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    server { listen 127.0.0.1:18081 http2; root $WORK/site; }
}
CONF
chmod 755 "$WORK" "$WORK/site"; chmod 644 "$WORK/site/"*
# h2o refuses to run as root without a user to become.
cat > "$WORK/h2o.conf" <<CONF
user: nobody
num-threads: 1
listen: { host: 127.0.0.1, port: 18082 }
access-log: /dev/null
error-log: $WORK/h2o-error.log
hosts: { default: { paths: { /: { file.dir: $WORK/site } } } }
CONF

"$ONELOOP" --port 18080 --no-builtins "$WORK/site" 2>"$WORK/oneloop.log" & echo $! > "$WORK/oneloop.pid"
nginx -c "$WORK/nginx.conf" & echo $! > "$WORK/nginx.pid"
h2o -c "$WORK/h2o.conf" >/dev/null 2>&1 & echo $! > "$WORK/h2o.pid"
sleep 1

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
printf '%-8s %-7s %10s %10s %12s\n' server file req/s cpu-s req/cpu-s
for round in $(seq "$ROUNDS"); do
  for file in 13.txt 4k.bin; do
    for server in oneloop:18080 nginx:18081 h2o:18082; do
      name=${server%%:*}; port=${server##*:}; pid=$(cat "$WORK/$name.pid")
      before=$(cpu "$pid")
      out=$(h2load -n "$REQUESTS" -c 50 -m 10 -t 1 "http://127.0.0.1:$port/$file" 2>&1)
      after=$(cpu "$pid")
      rps=$(echo "$out" | awk '/finished in/ {print $4}')
      ok=$(echo "$out" | awk '/status codes:/ {print $3}')
      if [ "$ok" != "$REQUESTS" ]; then
        printf '%-8s %-7s failed: %s of %s answered 2xx\n' "$name" "$file" "$ok" "$REQUESTS"
        continue
      fi
      secs=$(echo "$before $after $ticks" | awk '{printf "%.2f", ($2 - $1) / $3}')
      per=$(echo "$REQUESTS $secs" | awk '{printf "%.0f", $1 / $2}')
      printf '%-8s %-7s %10s %10s %12s\n' "$name" "$file" "$rps" "$secs" "$per"
    done
  done
done
