-- create_or_update of a new user on every request: each wrk thread numbers its own users.
local counter = 0
local thread_tag = nil

function setup(thread)
  thread:set("tag", tostring(math.random(1, 2^31)) .. "-" .. tostring(os.time()))
end

function init(args)
  thread_tag = tag
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("DESKD_BENCH_AUTH")

function request()
  counter = counter + 1
  local id = thread_tag .. "-" .. counter
  local body = '{"user":{"name":"Bench User ' .. id .. '","email":"bench-' .. id ..
    '@example.org","external_id":"bench-' .. id .. '","tags":["bench"],"user_fields":{"plan":"gold"}}}'
  return wrk.format(nil, "/api/v2/users/create_or_update", nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
