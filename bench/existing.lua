-- create_or_update of one existing user, over and over (the update path; 200 each time).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("DESKD_BENCH_AUTH")
wrk.body = '{"user":{"name":"Bench Existing","email":"bench-existing@example.org","tags":["bench"]}}'
wrk.path = "/api/v2/users/create_or_update"

function response(status, headers, body)
  if status ~= 200 and status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
