-- GET /api/v2/users/me over and over: the cost of the HTTP layers and authentication alone.
wrk.method = "GET"
wrk.headers["Authorization"] = os.getenv("DESKD_BENCH_AUTH")
wrk.path = "/api/v2/users/me"
