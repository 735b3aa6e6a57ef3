-- Settles one request against the rate limits.
-- KEYS[1] the address's failures, KEYS[2] the client's requests this window (KEYS[1] again when the
-- token was not valid). ARGV: failure limit, client limit, window ms, block ms, '1' when authenticated.
-- Returns {outcome, n}: blocked (n = ms left), failed (n = failures of the address so far this
-- window, counted), limited (n = ms left), ok (n = left).
-- Only attempts without a valid token look at, or add to, the address's failures: a valid client is
-- never refused because someone else at its address (behind a proxy: anyone) kept guessing.
if ARGV[5] ~= '1' then
  local fails = tonumber(redis.call('GET', KEYS[1]) or '0')
  if fails >= tonumber(ARGV[1]) then return {'blocked', redis.call('PTTL', KEYS[1])} end
  fails = redis.call('INCR', KEYS[1])
  if fails == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  if fails >= tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
  return {'failed', fails}
end
local used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if used > tonumber(ARGV[2]) then return {'limited', redis.call('PTTL', KEYS[2])} end
return {'ok', tonumber(ARGV[2]) - used}
