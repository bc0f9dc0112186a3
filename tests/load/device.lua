-- wrk script for the device flow (tests/load/device.sh). MODE=start: POST
-- /device_authorization as a public client, from a rotating client
-- address (X-Forwarded-For, the server trusting 127.0.0.1), so the
-- per-address limit does not stop the run. MODE=poll: POST /token with
-- the device grant, each request with the next device code of CODES (a
-- file, one per line).
local mode = os.getenv("MODE")
local client = os.getenv("CLIENT_ID")
local codes = {}
if mode == "poll" then
  for line in io.lines(os.getenv("CODES")) do codes[#codes + 1] = line end
end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

request = function()
  n = n + 1
  if mode == "poll" then
    wrk.path = "/token"
    wrk.headers["X-Forwarded-For"] = nil
    wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id="
      .. client .. "&device_code=" .. codes[(n % #codes) + 1]
  else
    wrk.path = "/device_authorization"
    wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    wrk.body = "client_id=" .. client .. "&scope=openid"
  end
  return wrk.format()
end
