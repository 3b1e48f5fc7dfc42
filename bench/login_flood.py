#!/usr/bin/env python3
# Peak RSS of a deskd server under a flood of concurrent wrong passwords (issue 11).
#
#   python3 bench/login_flood.py target/release/deskd 200 [serve options...]
#
# Starts the binary on a fresh SQLite database with an admin that has a password, opens N
# connections, sends a wrong password for the admin on all of them at once, and prints the
# server's RSS before, its peak (VmHWM), the statuses, and how fast a token request is answered
# right after. Linux only (/proc). Standard library only.
import base64, os, socket, subprocess, sys, threading, time, tempfile, collections

binary, n = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
port = 18000 + os.getpid() % 1000
work = tempfile.mkdtemp()
env = dict(os.environ, DESKD_ADMIN_EMAIL="admin@example.org", DESKD_ADMIN_TOKEN="tok-0123456789",
           DESKD_ADMIN_PASSWORD="correct horse battery staple", DESKD_LOG="warn")
p = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", f"sqlite://{work}/d.db"] + extra,
                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
p.stdout.readline()
time.sleep(0.5)

def rss():
    with open(f"/proc/{p.pid}/status") as f:
        d = dict(l.split(":", 1) for l in f)
    return int(d["VmRSS"].split()[0]) // 1024, int(d["VmHWM"].split()[0]) // 1024

base = rss()[0]
statuses = collections.Counter()
lock = threading.Lock()
go = threading.Event()

def one(i):
    auth = base64.b64encode(f"admin@example.org:wrong password {i}".encode()).decode()
    s = socket.create_connection(("127.0.0.1", port))
    req = f"GET /api/v2/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n".encode()
    go.wait()
    s.sendall(req)
    data = b""
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    with lock:
        statuses[data.split(b" ", 2)[1].decode() if data else "closed"] += 1

threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads: t.start()
time.sleep(0.3)
start = time.time(); go.set()
peak_seen = 0
while any(t.is_alive() for t in threads):
    peak_seen = max(peak_seen, rss()[0]); time.sleep(0.02)
took = time.time() - start
# responsiveness right after: a token request
t0 = time.time()
s = socket.create_connection(("127.0.0.1", port))
tok = base64.b64encode(b"admin@example.org/token:tok-0123456789").decode()
s.sendall(f"GET /api/v2/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {tok}\r\nConnection: close\r\n\r\n".encode())
resp = s.recv(100).split(b" ", 2)[1].decode()
after = time.time() - t0
print(f"{n} wrong passwords {' '.join(extra) or '(defaults)'}: RSS before {base} MiB, peak {rss()[1]} MiB (VmHWM), "
      f"statuses {dict(statuses)}, flood took {took:.2f}s, token request after: {resp} in {after*1000:.0f} ms")
p.terminate(); p.wait()
