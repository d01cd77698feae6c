#!/usr/bin/env python3
"""Whole-run benchmark: the same sandbox flow (benches/peers/flow.json) through the worker and
through the scripts a team would write instead (Playwright for Node, Selenium for Python) and the
WebDriver floor, on one machine in one run. Started by scripts/bench-flows.sh, which installs the
peers and builds the worker first.

Latency: every tool runs `warm` and `isolated` flows, interleaved (worker, playwright, selenium,
floor, worker, ...) after untimed warm-up rounds; medians with min and max, and ratios.
Throughput: `batch C N` per tool at each concurrency C, interleaved per level; flows per minute,
the tool's own CPU share and the browsers' PSS per concurrent session, sampled from /proc.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benches" / "peers"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tool:
    def __init__(self, name, command):
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1, cwd=ROOT)
        self.pid = int(self.ask("pid")[0])

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline().strip()
        if not line.startswith("ok "):
            raise RuntimeError(f"{self.name} {command}: {line or 'exited'}")
        words = line[3:].split()
        return words[0], dict(w.split("=", 1) for w in words[1:])

    def close(self):
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()


def processes():
    """pid -> (ppid, comm) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            table[int(entry)] = (ppid, comm)
    return table


def descendants(root, table):
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid):
    """utime + stime of one live process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


def machine_busy_seconds():
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK


def pss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Peak PSS of a tool's descendants (browsers, chromedriver) while a batch runs."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.peak_kib, self.peak_processes = root, 0, 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            pids = descendants(self.root, processes())
            total = sum(pss_kib(p) for p in pids)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(pids)


def summary(values):
    return {"runs": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed rounds per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels for throughput")
    parser.add_argument("--flows-per-batch", type=int, default=0,
                        help="flows per throughput batch (default max(16, 3 x level))")
    parser.add_argument("--tools", default="worker,playwright,selenium,floor")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "target" / "bench-flows.json"))
    parser.add_argument("--bin-dir", default=str(ROOT / "target" / "release"),
                        help="where pairing-worker and examples/flow_bench are (another build, "
                             "e.g. a commit's, to compare before and after on one machine)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.0:
        print(f"warning: load average {load:.2f} at the start: other work will skew the figures "
              "(leftover chromium processes? `pgrep -c chromium`)", file=sys.stderr)

    bin_dir = Path(args.bin_dir)
    venv_python = os.environ.get("PEERS_PYTHON", str(ROOT / "target" / "peers-venv" / "bin" / "python"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = subprocess.Popen([bin_dir / "pairing-worker", "sandbox", "--listen", f"127.0.0.1:{port}"],
                               stderr=subprocess.DEVNULL, cwd=ROOT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)

    commands = {
        "worker": [bin_dir / "examples" / "flow_bench", base],
        "playwright": ["node", PEERS / "playwright" / "flow.mjs", base],
        "selenium": [venv_python, PEERS / "selenium" / "flow.py", base],
        "floor": [venv_python, PEERS / "floor" / "flow.py", base],
    }
    names = [t for t in args.tools.split(",") if t]
    tools = [Tool(name, [str(c) for c in commands[name]]) for name in names]
    results = {"machine": machine(), "latency": {}, "throughput": {}}
    try:
        if not args.skip_latency:
            latency(tools, args, results)
        if not args.skip_throughput:
            throughput(tools, args, results, sandbox.pid)
    finally:
        for tool in tools:
            tool.close()
        sandbox.terminate()
        sandbox.wait()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    report(results)
    print(f"\n(raw figures: {args.out})")


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "chromium": chromium,
            "load_at_start": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M")}


def latency(tools, args, results):
    modes = ["warm", "isolated"]
    samples = {(t.name, m): [] for t in tools for m in modes}
    extras = {}
    total = args.warmup + args.runs
    for round_no in range(total):
        for tool in tools:
            for mode in modes:
                ms, extra = tool.ask(mode)
                if round_no >= args.warmup:
                    samples[(tool.name, mode)].append(float(ms))
                    for key, value in extra.items():
                        extras.setdefault((tool.name, mode, key), []).append(float(value))
        print(f"latency round {round_no + 1}/{total}", file=sys.stderr)
    for (name, mode), values in samples.items():
        results["latency"][f"{name}/{mode}"] = summary(values)
    for (name, mode, key), values in extras.items():
        results["latency"][f"{name}/{mode}/{key}"] = summary(values)


def throughput(tools, args, results, sandbox_pid):
    for level in [int(x) for x in args.levels.split(",")]:
        flows = args.flows_per_batch or max(16, 3 * level)
        for tool in tools:
            table = processes()
            drivers = [p for p in descendants(tool.pid, table) if table[p][1] == "chromedriver"]
            sampler = MemorySampler(tool.pid)
            baseline_kib = sum(pss_kib(p) for p in descendants(tool.pid, table))
            own, driver_cpu = cpu_seconds(tool.pid), sum(cpu_seconds(p) for p in drivers)
            busy, portal = machine_busy_seconds(), cpu_seconds(sandbox_pid)
            sampler.start()
            ms, _ = tool.ask(f"batch {level} {flows}")
            sampler.done.set()
            sampler.join()
            own = cpu_seconds(tool.pid) - own
            driver_cpu = sum(cpu_seconds(p) for p in drivers) - driver_cpu
            busy = machine_busy_seconds() - busy
            portal = cpu_seconds(sandbox_pid) - portal
            stack = max(busy - portal, 1e-9)  # everything but the fake portal: tool + driver + browsers
            results["throughput"][f"{tool.name}/{level}"] = {
                "flows": flows, "seconds": float(ms) / 1000, "flows_per_minute": flows * 60000 / float(ms),
                "own_cpu_s": own, "driver_cpu_s": driver_cpu, "stack_cpu_s": stack,
                "own_cpu_share": own / stack, "portal_cpu_s": portal,
                "baseline_pss_mib": baseline_kib / 1024,
                "peak_pss_mib": sampler.peak_kib / 1024, "peak_processes": sampler.peak_processes,
                "pss_per_session_mib": max(sampler.peak_kib - baseline_kib, 0) / 1024 / level,
            }
            print(f"throughput {tool.name} x{level}: {flows * 60000 / float(ms):.0f} flows/min", file=sys.stderr)


def report(results):
    m = results["machine"]
    print(f"# {m['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['chromium']}, load at start {m['load_at_start']:.2f}")
    lat = results["latency"]
    if lat:
        print("\n| tool | mode | runs | median ms | min | max |\n|---|---|---|---|---|---|")
        for key, s in lat.items():
            name, mode, *extra = key.split("/")
            label = mode + (f" ({extra[0].replace('_', ' ')})" if extra else "")
            print(f"| {name} | {label} | {s['runs']} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} |")
        print("\n| ratio (medians) | worker ÷ peer |\n|---|---|")
        for peer in ("playwright", "selenium", "floor"):
            for mode in ("warm", "isolated"):
                if f"worker/{mode}" in lat and f"{peer}/{mode}" in lat:
                    ratio = lat[f"worker/{mode}"]["median"] / lat[f"{peer}/{mode}"]["median"]
                    print(f"| {mode}: worker ÷ {peer} | {ratio:.2f} |")
    thr = results["throughput"]
    if thr:
        print("\n| tool | sessions | flows | flows/min | own CPU share | driver CPU s | PSS before MiB | peak PSS MiB | added PSS per session MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key, t in thr.items():
            name, level = key.split("/")
            print(f"| {name} | {level} | {t['flows']} | {t['flows_per_minute']:.0f} | {t['own_cpu_share'] * 100:.1f} % | "
                  f"{t['driver_cpu_s']:.1f} | {t['baseline_pss_mib']:.0f} | {t['peak_pss_mib']:.0f} | {t['pss_per_session_mib']:.0f} |")
        peaks = {}
        for key, t in thr.items():
            name = key.split("/")[0]
            peaks[name] = max(peaks.get(name, 0), t["flows_per_minute"])
        print("\n| peak flows/min | " + " | ".join(peaks) + " |\n|---|" + "---|" * len(peaks))
        print("| | " + " | ".join(f"{v:.0f}" for v in peaks.values()) + " |")


if __name__ == "__main__":
    main()
