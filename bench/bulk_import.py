#!/usr/bin/env python3
"""Bulk import benchmark: N distinct users through create_or_update_many, 100 a request.

    bench/bulk_import.py --url http://127.0.0.1:18181 --email E --token T [--users 1000000] [--inflight 24]

Several requests in flight (never more than the account's 30-job cap: a 429 is honoured by
sleeping Retry-After), polls show_many until every job has completed, then prints users/s,
the per-job latency of an idle single job, and checks every result. Standard library only.
"""
import argparse, base64, http.client, json, threading, time, urllib.parse


def client(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def request(conn, method, path, auth, body=None):
    headers = {"Authorization": auth, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, resp.getheader("Retry-After"), data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--inflight", type=int, default=24)
    p.add_argument("--tag", default=str(int(time.time())))
    a = p.parse_args()
    auth = "Basic " + base64.b64encode(f"{a.email}/token:{a.token}".encode()).decode()
    batches = a.users // 100
    lock = threading.Lock()
    pending = set()           # job ids not yet seen completed
    slots = threading.Semaphore(a.inflight)
    next_batch = [0]
    stats = {"created": 0, "failed": 0, "429": 0}

    def batch_body(b):
        users = [{"name": f"Bulk {a.tag} {b}-{i}", "email": f"bulk-{a.tag}-{b}-{i}@example.org",
                  "external_id": f"bulk-{a.tag}-{b}-{i}", "tags": ["bulk"]} for i in range(100)]
        return json.dumps({"users": users})

    def submitter():
        conn = client(a.url)
        while True:
            with lock:
                b = next_batch[0]
                next_batch[0] += 1
            if b >= batches:
                return
            body = batch_body(b)
            slots.acquire()
            while True:
                status, retry, data = request(conn, "POST", "/api/v2/users/create_or_update_many.json", auth, body)
                if status == 429:
                    with lock:
                        stats["429"] += 1
                    time.sleep(int(retry or 1))
                    continue
                assert status == 200, (status, data[:300])
                with lock:
                    pending.add(json.loads(data)["job_status"]["id"])
                break

    def poller():
        conn = client(a.url)
        while True:
            with lock:
                ids = list(pending)[:100]
                finished = next_batch[0] >= batches and not pending
            if finished:
                return
            if not ids:
                time.sleep(0.02)
                continue
            status, _, data = request(conn, "GET", "/api/v2/job_statuses/show_many.json?ids=" + ",".join(ids), auth)
            assert status == 200, data[:300]
            for job in json.loads(data)["job_statuses"]:
                if job["status"] == "completed":
                    ok = sum(1 for r in job["results"] if r.get("status") == "Created")
                    with lock:
                        stats["created"] += ok
                        stats["failed"] += len(job["results"]) - ok
                        pending.discard(job["id"])
                    slots.release()
            time.sleep(0.05)

    t0 = time.time()
    threads = [threading.Thread(target=submitter) for _ in range(4)] + [threading.Thread(target=poller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    print(f"users: {batches * 100}  created: {stats['created']}  failed: {stats['failed']}  429s honoured: {stats['429']}")
    print(f"elapsed: {elapsed:.1f} s  throughput: {batches * 100 / elapsed:,.0f} users/s")

    # One 100-user job on an idle server: POST to completed.
    conn = client(a.url)
    t1 = time.time()
    status, _, data = request(conn, "POST", "/api/v2/users/create_or_update_many.json", auth, batch_body(batches + 1))
    job = json.loads(data)["job_status"]["id"]
    while True:
        _, _, data = request(conn, "GET", f"/api/v2/job_statuses/{job}.json", auth)
        if json.loads(data)["job_status"]["status"] == "completed":
            break
        time.sleep(0.002)
    print(f"idle single 100-user job, POST to completed: {(time.time() - t1) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
