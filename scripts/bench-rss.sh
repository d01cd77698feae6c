#!/usr/bin/env bash
# Memory of the worker process itself (browsers are separate processes) with 1,000 jobs queued:
# `serve --sandbox --slots 2` on a scratch SQLite database (or BENCH_DB=postgres://...), 1,000
# accounts and a re-check job for each submitted over the HTTP API, then the worker left to work
# through them for BENCH_SECONDS (default 60). Prints VmRSS before, after submitting, and the peak
# (VmHWM) with how many jobs finished meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin pairing-worker
source scripts/lib/scratch-serve.sh
scratch_serve ./target/release/pairing-worker "${BENCH_DB:-sqlite:$scratch/bench.db}" bench \
  --slots 2 --logins-per-minute 100000
python3 - "$serve_pid" "$base" "$token" "${BENCH_JOBS:-1000}" "${BENCH_SECONDS:-60}" <<'PY'
import http.client, json, sys, time
pid, base, token, jobs, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
host, port = base.removeprefix("http://").split(":")
conn = http.client.HTTPConnection(host, int(port))
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
           "X-Can-Update-Credentials": "true"}

def call(method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    data = json.loads(response.read() or "null")
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data}")
    return data

def memory():
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

print(f"idle: RSS {memory()[0]:.1f} MiB")
for i in range(jobs):
    account = call("POST", "/v1/accounts", {"provider": "deliveroo",
                   "credentials": {"username": "owner@sandbox.test", "password": "Sandbox-Pass-1"}})
    call("POST", f"/v1/accounts/{account['id']}/jobs", {"kind": "recheck", "interactive": False})
rss, peak = memory()
print(f"{jobs} accounts and jobs submitted: RSS {rss:.1f} MiB")
end = time.time() + seconds
while time.time() < end:
    time.sleep(1)
    rss, peak = memory()
conn.request("GET", "/metrics", headers=headers)
text = conn.getresponse().read().decode()
done = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("pairing_jobs_finished_total{"))
print(f"after {seconds} s working ({done:.0f} jobs finished): RSS {rss:.1f} MiB, peak (VmHWM) {peak:.1f} MiB")
PY
