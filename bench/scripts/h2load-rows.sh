#!/bin/sh
# HTTP/2 by h2load, 50 connections x 10 streams: oneloop (one loop), nginx
# (one worker) and h2o (one thread), each on the same two files, on
# cleartext (prior knowledge) and over TLS (ALPN h2), rounds interleaved.
# Prints requests per second and per server CPU-second (utime + stime of the
# server's process from /proc, so the load generator's CPU is not counted).
# Then the memory of an idle connection: IDLE connections that each had one
# request answered and then stay open, over HTTP/1.1 and over HTTP/2, as the
# server's RSS growth per connection.
#
#   bench/scripts/h2load-rows.sh [ROUNDS] [REQUESTS] [IDLE]
#
# nginx runs twice: as the first measurement ran it (sendfile, no cache of
# descriptors), and tuned for small files (nginx-tuned).
#
# Needs h2load (nghttp2-client), nginx, h2o, openssl and python3; a release
# build of oneloop.
set -eu
ROUNDS=${1:-3}
REQUESTS=${2:-200000}
IDLE=${3:-1000}
ONELOOP=${ONELOOP:-target/release/oneloop}
HERE=$(dirname "$0")
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
mkdir "$WORK/site"
printf 'hello, world\n' > "$WORK/site/13.txt"
head -c 4096 /dev/urandom > "$WORK/site/4k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null
# Enough descriptors for the idle connections, for the servers and the probe.
ulimit -n 8192

# nginx 1.22 has no `http2 on`: a port is HTTP/2 only (`listen ... http2`),
# so HTTP/1.1's idle connections go to a port of their own.
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 8192;
master_process off;
daemon off;
error_log $WORK/nginx-error.log;
pid $WORK/nginx.nginxpid;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:18081 http2;
        listen 127.0.0.1:18444 ssl http2;
        listen 127.0.0.1:18091;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/site;
    }
}
CONF
# nginx again, at its best for these small files: descriptors cached (no
# open, fstat and close per request) and files read rather than sent by
# sendfile. (`tcp_nodelay off` halves its CPU per request again, but Nagle's
# delay then caps h2c at 11k requests/s: not its best; docs/benchmarks.md.)
sed -e 's/sendfile on;/sendfile off; open_file_cache max=1000;/' \
    -e 's/18081/18083/; s/18444/18446/; s/18091/18093/' \
    -e "s|nginx.nginxpid|nginx-tuned.nginxpid|" \
    "$WORK/nginx.conf" > "$WORK/nginx-tuned.conf"
chmod 755 "$WORK" "$WORK/site"; chmod 644 "$WORK/site/"* "$WORK/key.pem" "$WORK/cert.pem"
# h2o refuses to run as root without a user to become.
cat > "$WORK/h2o.conf" <<CONF
user: nobody
num-threads: 1
listen: { host: 127.0.0.1, port: 18082 }
listen:
  host: 127.0.0.1
  port: 18445
  ssl: { certificate-file: $WORK/cert.pem, key-file: $WORK/key.pem }
access-log: /dev/null
error-log: $WORK/h2o-error.log
hosts: { default: { paths: { /: { file.dir: $WORK/site } } } }
CONF

start_servers() {
  "$ONELOOP" --port 18080 --no-builtins "$WORK/site" 2>"$WORK/oneloop.log" & echo $! > "$WORK/oneloop.pid"
  "$ONELOOP" --port 18443 --no-builtins --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
    "$WORK/site" 2>"$WORK/oneloop-tls.log" & echo $! > "$WORK/oneloop-tls.pid"
  nginx -c "$WORK/nginx.conf" & echo $! > "$WORK/nginx.pid"
  nginx -c "$WORK/nginx-tuned.conf" & echo $! > "$WORK/nginx-tuned.pid"
  # h2o serves from this process (its child is a backtrace annotator).
  h2o -c "$WORK/h2o.conf" >/dev/null 2>&1 & echo $! > "$WORK/h2o.pid"
  sleep 1
}
stop_servers() {
  kill $(cat "$WORK"/*.pid) 2>/dev/null || true
  rm -f "$WORK"/*.pid
  sleep 1
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pid_of() { cat "$WORK/$1.pid"; }

# The memory of idle connections first, on servers that have served nothing
# yet and are restarted for each protocol: memory freed by a load test or by
# the other protocol's connections would be reused and hide the cost.
idle() {
  start_servers
  for name in oneloop nginx h2o; do
    case $name-$1 in
      nginx-h1) port=18091 ;; nginx-h2) port=18081 ;;
      oneloop-*) port=18080 ;; h2o-*) port=18082 ;;
    esac
    # One connection first, so that what every server allocates once
    # (its first buffers, HPACK's tables) is not counted per connection.
    python3 "$HERE/idle-connections.py" "$(pid_of "$name")" "$port" "$1" 1 >/dev/null
    python3 "$HERE/idle-connections.py" "$(pid_of "$name")" "$port" "$1" "$IDLE" > "$WORK/idle-$name-$1"
  done
  stop_servers
}
idle h1
idle h2
start_servers
ticks=$(getconf CLK_TCK)
printf '%-11s %-5s %-7s %10s %10s %12s\n' server over file req/s cpu-s req/cpu-s
for round in $(seq "$ROUNDS"); do
  for over in h2c tls; do
    for file in 13.txt 4k.bin; do
      for name in oneloop nginx nginx-tuned h2o; do
        if [ "$over" = h2c ]; then
          scheme=http; pidname=$name
          case $name in
            oneloop) port=18080 ;; nginx) port=18081 ;; nginx-tuned) port=18083 ;; h2o) port=18082 ;;
          esac
        else
          scheme=https; pidname=$name
          case $name in
            oneloop) port=18443; pidname=oneloop-tls ;; nginx) port=18444 ;;
            nginx-tuned) port=18446 ;; h2o) port=18445 ;;
          esac
        fi
        pid=$(pid_of "$pidname")
        before=$(cpu "$pid")
        out=$(h2load -n "$REQUESTS" -c 50 -m 10 -t 1 "$scheme://127.0.0.1:$port/$file" 2>&1)
        after=$(cpu "$pid")
        rps=$(echo "$out" | awk '/finished in/ {print $4}')
        ok=$(echo "$out" | awk '/status codes:/ {print $3}')
        if [ "$ok" != "$REQUESTS" ]; then
          printf '%-11s %-5s %-7s failed: %s of %s answered 2xx\n' "$name" "$over" "$file" "$ok" "$REQUESTS"
          continue
        fi
        secs=$(echo "$before $after $ticks" | awk '{printf "%.2f", ($2 - $1) / $3}')
        per=$(echo "$REQUESTS $secs" | awk '{printf "%.0f", $1 / $2}')
        printf '%-11s %-5s %-7s %10s %10s %12s\n' "$name" "$over" "$file" "$rps" "$secs" "$per"
      done
    done
  done
done

echo
echo "RSS growth per idle connection ($IDLE each, one request answered), bytes:"
printf '%-8s %10s %10s\n' server HTTP/1.1 HTTP/2
for name in oneloop nginx h2o; do
  printf '%-8s %10s %10s\n' "$name" "$(cat "$WORK/idle-$name-h1")" "$(cat "$WORK/idle-$name-h2")"
done
