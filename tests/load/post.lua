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

-- Errors show in wrk's own "Non-2xx or 3xx responses" line (a done()
-- function cannot count them: wrk runs it in a Lua state of its own).
