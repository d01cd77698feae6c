"""The stdin protocol the Python peers of scripts/bench-flows.py share (see playwright/flow.mjs).

A peer gives `run_peer` how to open a session (a new browser), run the flow in one, and end one,
plus how to shut down. `warm` runs the flow in one session kept across flows; `isolated` opens a
session, runs the flow and ends the session. Batches run isolated flows on threads (each WebDriver
call blocks on I/O, so threads are what such a script uses).
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

FLOW = json.loads((Path(__file__).parent / "flow.json").read_text())
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def batch(isolated, concurrency, total):
    lock = threading.Lock()
    left = [total]
    errors = []

    def lane():
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            try:
                isolated()
            except Exception as error:  # reported once the batch ends
                errors.append(error)

    lanes = [threading.Thread(target=lane) for _ in range(concurrency)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    if errors:
        raise errors[0]


def run_peer(open_session, run_flow, end_session, shutdown):
    kept = []

    def warm():
        if not kept:
            kept.append(open_session())
        run_flow(kept[0])

    def isolated():
        session = open_session()
        try:
            run_flow(session)
        finally:
            end_session(session)

    def timed(work):
        started = time.perf_counter()
        work()
        return f"{(time.perf_counter() - started) * 1000:.1f}"

    for line in sys.stdin:
        command, *rest = line.split()
        try:
            if command == "warm":
                answer = "ok " + timed(warm)
            elif command == "isolated":
                answer = "ok " + timed(isolated)
            elif command == "batch":
                concurrency, total = int(rest[0]), int(rest[1])
                answer = "ok " + timed(lambda: batch(isolated, concurrency, total))
            elif command == "pid":
                answer = f"ok {os.getpid()}"
            elif command == "quit":
                break
            else:
                answer = f"err unknown command {command}"
        except Exception as error:
            answer = "err " + (str(error).splitlines() or [type(error).__name__])[0]
        print(answer, flush=True)
    for session in kept:
        end_session(session)
    shutdown()
