#!/usr/bin/env python3
"""Test mode: re-importing a fixture against restoring a snapshot of the same state.

    python3 bench/fixtures.py [--binary target/release/deskd] [--users 1000] [--runs 10]
                              [--database memory|file|postgres://...]

Starts `deskd serve --test-mode`, imports a generated fixture (N users with two identities,
tags and fields; N/20 organizations; a default membership each), saves a snapshot, then times
(client-side, the whole HTTP exchange) `POST /__deskd/import` of the exported document and
`POST /__deskd/snapshots/bench/restore`, alternating, each after a change to the account.
Prints min / median / max of each. Standard library only.
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

EMAIL, TOKEN = "bench@deskd.test", "bench-token-0123456789"


def call(url, method, path, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    auth = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    req.add_header("Authorization", "Basic " + auth)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        text = r.read()
    return (time.perf_counter() - t0) * 1000.0, (json.loads(text) if text else None)


def fixture(n):
    orgs = [{"id": 1000 + j, "name": f"Org {j}", "tags": ["bench"]} for j in range(max(1, n // 20))]
    users = [{
        "id": 100000 + i, "name": f"User {i}", "role": "end-user" if i % 10 else "agent",
        "tags": ["t1", f"g{i % 7}"], "user_fields": {"plan": "gold", "n": i},
        "organization_id": orgs[i % len(orgs)]["id"],
        "identities": [{"type": "email", "value": f"user{i}@bench.test", "verified": True},
                       {"type": "phone_number", "value": f"+1555{i:07d}"}],
    } for i in range(n)]
    return {"deskd_fixture": 1, "organizations": orgs, "users": users}


def summary(name, xs):
    xs = sorted(xs)
    print(f"{name:<28} min {xs[0]:8.1f} ms   median {statistics.median(xs):8.1f} ms   max {xs[-1]:8.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/deskd")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--database", default="memory")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    db = f"sqlite://{tmp}/bench.db" if a.database == "file" else a.database
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKD_")}
    env.update(DESKD_LOG="warn", DESKD_ADMIN_EMAIL=EMAIL, DESKD_ADMIN_TOKEN=TOKEN, DESKD_RATE_LIMITS="off")
    proc = subprocess.Popen([a.binary, "serve", "--test-mode", "--listen", "127.0.0.1:0", "--database", db],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            if line.startswith("deskd listening on "):
                url = line.split()[-1]
                break
        ms, _ = call(url, "POST", "/__deskd/import", fixture(a.users))
        print(f"first import of {a.users} users: {ms:.1f} ms")
        _, doc = call(url, "GET", "/__deskd/export")
        size = len(json.dumps(doc))
        ms, _ = call(url, "POST", "/__deskd/snapshots/bench")
        print(f"export: {size / 1e6:.2f} MB; snapshot save: {ms:.1f} ms")
        imports, restores = [], []
        for i in range(a.runs):
            # A change between runs, so neither call finds the state already in place.
            call(url, "POST", "/api/v2/users", {"user": {"name": f"Extra {i}", "email": f"extra{i}@bench.test"}})
            ms, _ = call(url, "POST", "/__deskd/import", doc)
            imports.append(ms)
            call(url, "POST", "/api/v2/users", {"user": {"name": f"Extra {i}", "email": f"extra{i}@bench.test"}})
            ms, _ = call(url, "POST", "/__deskd/snapshots/bench/restore")
            restores.append(ms)
        _, after = call(url, "GET", "/__deskd/export")
        assert after == doc, "a restore must give back the exported state"
        summary("import (export document)", imports)
        summary("snapshot restore", restores)
        print(f"restore is {statistics.median(imports) / statistics.median(restores):.1f}x faster (medians)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
