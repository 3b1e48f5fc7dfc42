#!/usr/bin/env python3
# Peak RSS of a deskd server while N end users each send a 4 MiB JSON body at once (issue 11,
# item 9: parsing a body costs many times its size).
#
#   python3 bench/body_memory.py target/release/deskd 8 [--shape tiny|flood] [serve options...]
#
# Starts the binary on a fresh SQLite database, creates an end user, then opens N connections
# and sends on all of them at once `PUT /api/v2/users/{id}/password` (an endpoint an end user
# reaches for itself) with a 4 MiB body of small JSON objects (the costliest shape to parse).
# Prints the RSS before, the peak (VmHWM), the statuses, and the wall time. Compare a run with
# the default body budget against one with `--body-budget-mib 100000` (no bound in effect).
# Linux only (/proc). Standard library only.
import base64, json, os, socket, subprocess, sys, threading, time, tempfile, collections, urllib.request

binary, n = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
shape = "tiny"
if extra[:1] == ["--shape"]:
    shape, extra = extra[1], extra[2:]
port = 19000 + os.getpid() % 1000
work = tempfile.mkdtemp()
token = "tok-0123456789"
env = dict(os.environ, DESKD_ADMIN_EMAIL="admin@example.org", DESKD_ADMIN_TOKEN=token,
           DESKD_LOG="warn", DESKD_RATE_LIMITS="off")
p = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", f"sqlite://{work}/d.db"] + extra,
                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
p.stdout.readline()
time.sleep(0.5)

def rss():
    with open(f"/proc/{p.pid}/status") as f:
        d = dict(l.split(":", 1) for l in f)
    return int(d["VmRSS"].split()[0]) // 1024, int(d["VmHWM"].split()[0]) // 1024

def auth(email):
    return "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()

req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/users", method="POST",
    data=json.dumps({"user": {"name": "End", "email": "end@example.org", "verified": True}}).encode(),
    headers={"Content-Type": "application/json", "Authorization": auth("admin@example.org")})
uid = json.load(urllib.request.urlopen(req))["user"]["id"]

# ~4 MiB of small objects, the costliest shape to parse. `--shape tiny` (the default): as many
# as deskd still parses (120,000 objects, padded to 4 MiB, under its cap of 250,000 JSON values);
# `--shape flood`: 520,000 `{"a":1}`, which deskd now refuses before parsing.
size = 4 * 1024 * 1024 - 64
if shape == "flood":
    items = ",".join(['{"a":1}'] * ((size - 40) // 8))
else:
    per = (size - 40) // 120_000
    items = ",".join(['{"a":"' + "x" * (per - 9) + '"}'] * 120_000)
body = ('{"password": "x", "filler": [' + items + ']}').encode()
head = (f"PUT /api/v2/users/{uid}/password HTTP/1.1\r\nHost: x\r\nAuthorization: {auth('end@example.org')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()

base = rss()[0]
statuses = collections.Counter()
lock = threading.Lock()
go = threading.Barrier(n)

def one():
    s = socket.create_connection(("127.0.0.1", port))
    go.wait()
    s.sendall(head + body)
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    with lock:
        statuses[data.split(b" ")[1].decode() if data else "closed"] += 1

t0 = time.time()
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.time() - t0
now, peak = rss()
print(f"bodies={n} x {len(body) / 1048576:.1f} MiB ({shape})  options={' '.join(extra) or '(defaults)'}")
print(f"rss before={base} MB  peak={peak} MB  after={now} MB  wall={wall:.2f} s  statuses={dict(statuses)}")
p.terminate()
p.wait()
