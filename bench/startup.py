#!/usr/bin/env python3
"""Start-to-ready of `deskd serve`: from spawning the process to the first 200 from /healthz.

    python3 bench/startup.py [--binary target/debug/deskd] [--runs 20] [--database memory]

Each run starts deskd on port 0 (`--test-mode --print-env`), reads stdout until the
`ZENDESK_URL=` line, polls GET /healthz every millisecond until it answers 200, then stops the
server with SIGTERM. Prints min / median / p90 / max of spawn-to-env-line and spawn-to-200.
Standard library only.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request


def one_run(binary, database):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKD_")}
    env["DESKD_LOG"] = "warn"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--database", database,
         "--test-mode", "--print-env"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    url = None
    try:
        for line in proc.stdout:
            if line.startswith("ZENDESK_URL="):
                url = line.split()[0].split("=", 1)[1]
                break
        if url is None:
            raise RuntimeError("deskd exited before printing ZENDESK_URL")
        t_env = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.001)
        t_ready = time.perf_counter()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return (t_env - t0) * 1000, (t_ready - t0) * 1000


def summary(name, xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    print(f"{name:>16}: min {xs[0]:7.1f} ms  median {statistics.median(xs):7.1f} ms  "
          f"p90 {p90:7.1f} ms  max {xs[-1]:7.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/deskd")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--database", default="memory",
                    help="memory, or `file` for a fresh SQLite file per run, or a URL")
    args = ap.parse_args()
    envs, readies = [], []
    for _ in range(args.runs):
        tmp = None
        db = args.database
        if db == "file":
            tmp = tempfile.mkdtemp(prefix="deskd-startup-")
            db = f"sqlite://{tmp}/deskd.db"
        try:
            e, r = one_run(args.binary, db)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        envs.append(e)
        readies.append(r)
    print(f"deskd start-to-ready, {args.runs} runs, database {args.database}, {args.binary}")
    summary("env line printed", envs)
    summary("first 200", readies)


if __name__ == "__main__":
    main()
