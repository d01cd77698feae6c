# Sourced by the API scripts: `scratch_serve BIN DB_URL ORGANISATION [serve args...]` starts `serve`
# on a free loopback port with a throwaway key, and sets `token`, `base` and `scratch`; the server
# is stopped and the scratch folder removed on exit.
scratch=$(mktemp -d)
serve_pid=""
scratch_cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap scratch_cleanup EXIT

scratch_serve() {
  local bin=$1 db=$2 organisation=$3
  shift 3
  PAIRING_WORKER_KEY=$("$bin" keys generate)
  export PAIRING_WORKER_KEY
  token=$("$bin" tokens create --db "$db" --organisation "$organisation")
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bin" serve --db "$db" --sandbox --listen "127.0.0.1:$port" --artifacts "$scratch/artifacts" "$@" \
    2>"$scratch/serve.log" &
  serve_pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "serve did not start:" >&2
  cat "$scratch/serve.log" >&2
  return 1
}
