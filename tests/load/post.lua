-- wrk script: POST a form body given in the environment (BODY) with an
-- Authorization header (AUTH).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("AUTH")

-- With DELAY_MS set, each connection pauses that long between requests:
-- a steady, lower load (for latency at a fraction of the maximum).
local pause = tonumber(os.getenv("DELAY_MS") or "0")
if pause > 0 then
  delay = function() return pause end
end

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
  for status, n in pairs(codes) do
    io.stderr:write(string.format("status %d: %d\n", status, n))
  end
end
