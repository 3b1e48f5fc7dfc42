#!/usr/bin/env python3
"""Read latency at scale: first and deep cursor pages of GET /users, search by email and by
external_id. Run after bulk_import.py has loaded the users (tag given there).

    bench/reads.py --url URL --email E --token T --tag TAG [--depth 900000] [--runs 30]
"""
import argparse, base64, http.client, json, statistics, time, urllib.parse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--depth", type=int, default=900_000)
    p.add_argument("--runs", type=int, default=30)
    a = p.parse_args()
    u = urllib.parse.urlparse(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    auth = "Basic " + base64.b64encode(f"{a.email}/token:{a.token}".encode()).decode()

    def get(path):
        conn.request("GET", path, headers={"Authorization": auth, "Accept": "application/json"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:300])
        return json.loads(body)

    def timed(name, path, check):
        samples = []
        for _ in range(a.runs):
            t = time.perf_counter()
            body = get(path)
            samples.append((time.perf_counter() - t) * 1000)
            check(body)
        print(f"{name:45s} median {statistics.median(samples):7.2f} ms   p90 {sorted(samples)[int(len(samples) * 0.9) - 1]:7.2f} ms")

    first = get("/api/v2/users.json?page[size]=1")["users"][0]["id"]
    deep_id = first + a.depth - 1
    cursor = base64.urlsafe_b64encode(json.dumps({"o": "id", "v": deep_id}, separators=(",", ":")).encode()).decode().rstrip("=")
    count = get("/api/v2/users/count.json")["count"]["value"]
    print(f"users in the database: {count}")
    timed("first cursor page (100 users)", "/api/v2/users.json?page[size]=100", lambda b: len(b["users"]) == 100 or exit("short page"))
    timed(f"cursor page after user #{a.depth:,}", f"/api/v2/users.json?page[size]=100&page[after]={cursor}",
          lambda b: b["users"][0]["id"] > deep_id or exit("wrong page"))
    timed("first offset page (100 users, with count)", "/api/v2/users.json", lambda b: b["count"] == count or exit("count"))
    b, i = a.depth // 100, a.depth % 100
    timed("search email:<one of 1M>", f"/api/v2/users/search.json?query=email%3Abulk-{a.tag}-{b}-{i}%40example.org",
          lambda r: r["count"] == 1 or exit("email search"))
    timed("search ?external_id=<one of 1M>", f"/api/v2/users/search.json?external_id=bulk-{a.tag}-{b}-{i}",
          lambda r: r["count"] == 1 or exit("external_id search"))


if __name__ == "__main__":
    main()
