#!/usr/bin/env bash
# A cluster to try: the chat example as two nodes behind nginx, with Redis between them.
#
#   bash scripts/cluster.sh                 # nginx on http://127.0.0.1:8080
#   bash scripts/cluster.sh --port 0        # nginx on a free port
#
# It installs Debian's redis-server and nginx when they are missing (as root, with apt-get),
# builds the chat example, and starts on loopback only: redis-server (persistence off, in a temp
# dir), two chat nodes (`--redis`, one random resume key for both) and nginx (a generated config
# in the same temp dir: round robin over the two nodes, WebSockets proxied). Messages said on one
# node reach the room's members on the other. Ctrl-C (or SIGTERM) stops everything it started,
# by PID, and removes the temp dir.
#
# Options:
#   --port N          nginx's port (default 8080; 0: a free one)
#   --ready-file F    also write the "CLUSTER READY ..." line to F once everything answers
#   --release         build and run the release binary (default: debug, quicker to build)
#   --no-build        use the binary already built (target/debug/chat or target/release/chat)
#
# Once everything answers it prints one line for programs (the JS test reads it):
#   CLUSTER READY nginx=PORT node1=PORT node2=PORT redis=PORT pids=REDIS,NODE1,NODE2,NGINX
# and runs until it is stopped; if a process it started exits, it stops the others and fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

nginx_port=8080
ready_file=
profile=debug
build=1
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --port) nginx_port=${2:?--port needs a number}; shift 2 ;;
    --port=*) nginx_port=${1#--port=}; shift ;;
    --ready-file) ready_file=${2:?--ready-file needs a path}; shift 2 ;;
    --ready-file=*) ready_file=${1#--ready-file=}; shift ;;
    --release) profile=release; shift ;;
    --no-build) build=; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $nginx_port =~ ^[0-9]+$ ]] || [ "$nginx_port" -gt 65535 ]; then
  echo "cluster.sh: --port must be a port number (0-65535), not $nginx_port" >&2
  exit 2
fi

say() { printf '== %s\n' "$*"; }
fail() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ "$nginx_port" -ne 0 ] && port_in_use "$nginx_port"; then
  fail "127.0.0.1:$nginx_port is in use by another program: stop it, or pass --port N (0: a free one)"
fi

# --- what is missing ------------------------------------------------------------------------
REDIS_SERVER=/usr/bin/redis-server
NGINX=/usr/sbin/nginx
missing=()
[ -x "$REDIS_SERVER" ] || missing+=(redis-server)
[ -x "$NGINX" ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian's ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "${missing[*]} missing: run as root, or apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

target_dir=${CARGO_TARGET_DIR:-target}
chat=$target_dir/$profile/chat
if [ -n "$build" ]; then
  say "building the chat example ($profile)"
  flags=(--quiet -p storex-examples --bin chat)
  [ "$profile" = release ] && flags+=(--release)
  cargo build "${flags[@]}"
fi
[ -x "$chat" ] || fail "$chat is missing: run cargo build -p storex-examples --bin chat"

# --- everything we start, and how it all stops -----------------------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/storex-cluster.XXXXXX")
# nginx's workers run as nobody when the master is root: they must reach its temp paths.
chmod 755 "$dir"
declare -A pids=() # name -> PID
names=()           # in start order; stopped in reverse
sleeper=

started() { pids[$1]=$2; names+=("$1"); }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null || true
  local i name pid
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    name=${names[i]} pid=${pids[${names[i]}]}
    kill -0 "$pid" 2>/dev/null || continue
    # SIGTERM: nginx's fast stop, the nodes' graceful stop (their pages get 1001), Redis's stop.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster.sh: $name (PID $pid) did not stop within 5 s: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
  [ ${#names[@]} -gt 0 ] && say "stopped ${names[*]}"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nothing listens on now (it may be taken before we bind it: the callers retry).
random_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! port_in_use "$port"; then
      echo "$port"
      return
    fi
  done
  fail "no free loopback port found"
}

# Waits (at most $2 tenths of a second) until command $3... succeeds, while PID $1 lives.
wait_until() {
  local pid=$1 tenths=$2
  shift 2
  for _ in $(seq "$tenths"); do
    kill -0 "$pid" 2>/dev/null || return 2
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# --- Redis ------------------------------------------------------------------------------------
mkdir "$dir/redis"
for attempt in 1 2 3 4 5; do
  redis_port=$(random_port)
  : >"$dir/redis.log"
  "$REDIS_SERVER" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir/redis" --logfile "$dir/redis.log" --daemonize no &
  redis_pid=$!
  if wait_until "$redis_pid" 100 grep -q "Ready to accept connections" "$dir/redis.log"; then
    started redis "$redis_pid"
    break
  fi
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  [ "$attempt" -lt 5 ] || fail "redis-server did not start: $(tail -n 3 "$dir/redis.log")"
done
redis_url="redis://127.0.0.1:$redis_port/"

# --- two chat nodes ---------------------------------------------------------------------------
resume_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
node_ports=()
for n in 1 2; do
  # Port 0: each node binds a free port itself and prints it.
  STOREX_RESUME_KEY=$resume_key REDIS_URL=$redis_url "$chat" --port 0 \
    >"$dir/node$n.out" 2>"$dir/node$n.log" &
  started "node$n" $!
  listening() { grep -Eo '^listening on http://127\.0\.0\.1:[0-9]+$' "$dir/node$n.out" >/dev/null; }
  # It waits for Redis (at most 10 s) before it listens.
  wait_until "${pids[node$n]}" 150 listening ||
    fail "chat node $n did not start: $(tail -n 3 "$dir/node$n.log")"
  node_ports+=("$(grep -Eo '^listening on http://127\.0\.0\.1:[0-9]+$' "$dir/node$n.out" | grep -Eo '[0-9]+$')")
done

# --- nginx ------------------------------------------------------------------------------------
write_nginx_conf() {
  cat >"$dir/nginx.conf" <<EOF
# Generated by scripts/cluster.sh; everything of this nginx lives in $dir.
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.log notice;
events { worker_connections 1024; }
http {
    access_log $dir/nginx-access.log;
    client_body_temp_path $dir/nginx-body;
    proxy_temp_path $dir/nginx-proxy;
    fastcgi_temp_path $dir/nginx-fastcgi;
    uwsgi_temp_path $dir/nginx-uwsgi;
    scgi_temp_path $dir/nginx-scgi;

    # A WebSocket upgrade passes "Connection: upgrade" on; a plain request "close".
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }

    upstream chat_nodes {
        server 127.0.0.1:${node_ports[0]};
        server 127.0.0.1:${node_ports[1]};
    }

    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://chat_nodes;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            # The endpoint admits pages of the request's own host: Host (with its port) and
            # Origin go to the node as the browser sent them.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            # A chat socket may be quiet for long (the client pings; this is the upper bound).
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }
    }
}
EOF
}

# Whether nginx on $1 answers the chat page (served by one of the nodes).
page_answers() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$1" >&3
  IFS= read -r -t 2 status <&3 || status=
  [[ $status == "HTTP/1.1 200"* ]]
)

# Ours answers: nginx writes its PID file once it has bound its port (another program's server
# on that port must not pass for it).
nginx_answers() { [ "$(cat "$dir/nginx.pid" 2>/dev/null)" = "$nginx_pid" ] && page_answers "$1"; }

attempts=1
[ "$nginx_port" -eq 0 ] && attempts=5
for attempt in $(seq "$attempts"); do
  port=$nginx_port
  if [ "$port" -eq 0 ]; then
    port=$(random_port)
  elif port_in_use "$port"; then
    fail "127.0.0.1:$port is in use by another program: stop it, or pass --port N (0: a free one)"
  fi
  write_nginx_conf "$port"
  rm -f "$dir/nginx.pid"
  : >"$dir/nginx.log"
  "$NGINX" -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx.log" 2>>"$dir/nginx.log" &
  nginx_pid=$!
  if wait_until "$nginx_pid" 100 nginx_answers "$port" 2>/dev/null; then
    started nginx "$nginx_pid"
    nginx_port=$port
    break
  fi
  kill -KILL "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  [ "$attempt" -lt "$attempts" ] || fail "nginx did not start on 127.0.0.1:$port: $(tail -n 3 "$dir/nginx.log")"
done

# --- running ----------------------------------------------------------------------------------
cat <<EOF

The chat runs as a cluster of two nodes (Redis carries each room's messages between them):
  nginx   http://127.0.0.1:$nginx_port/   round robin over the nodes, WebSockets proxied
  node 1  http://127.0.0.1:${node_ports[0]}/   (PID ${pids[node1]})
  node 2  http://127.0.0.1:${node_ports[1]}/   (PID ${pids[node2]})
  redis   $redis_url   (PID ${pids[redis]}; persistence off)
  files   $dir (configs and logs; removed at the end)

Try it: open
  http://127.0.0.1:$nginx_port/?room=lobby&name=ada
  http://127.0.0.1:${node_ports[0]}/?room=lobby&name=bob     (node 1 directly)
  http://127.0.0.1:${node_ports[1]}/?room=lobby&name=eve     (node 2 directly)
and say something in one tab: every tab of the room shows it, whichever node serves it.
Ctrl-C stops everything.

EOF
ready="CLUSTER READY nginx=$nginx_port node1=${node_ports[0]} node2=${node_ports[1]} redis=$redis_port pids=${pids[redis]},${pids[node1]},${pids[node2]},${pids[nginx]}"
echo "$ready"
if [ -n "$ready_file" ]; then
  echo "$ready" >"$ready_file.tmp" && mv "$ready_file.tmp" "$ready_file"
fi

while :; do
  for name in "${names[@]}"; do
    if ! kill -0 "${pids[$name]}" 2>/dev/null; then
      echo "--- the last lines of $name's log" >&2
      tail -n 10 "$dir/$name.log" >&2 || true
      fail "$name (PID ${pids[$name]}) stopped; stopping the others"
    fi
  done
  sleep 1 &
  sleeper=$!
  wait "$sleeper" || true
  sleeper=
done
