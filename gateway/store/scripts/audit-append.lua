-- Appends a batch of audit records in one round trip (group commit), compare-and-set on the chain head.
-- KEYS: head, log, time index, cut marker, then every record's term indexes in order.
-- ARGV: expected head ('' for none), expected list length, new head, record count, the sequence number
-- and SHA-1 of the last record this writer had confirmed by a replica (0 and '' for none), then per
-- record: its JSON, seq, time (ms) and number of term keys.
-- Returns 1 when written, 0 when the head moved (retry), -1 when the list does not match the head,
-- {-2, why} when the confirmed record is not in the log (a fail-over promoted a replica that lacks it:
-- the cut marker is set, so every writer refuses from now on), {-3, why} while the cut marker is set.
-- The checks run before any write, so a list of the wrong type or a truncated one writes nothing, and
-- a batch lands whole or not at all.
local cut = redis.call('GET', KEYS[4])
if cut then return {-3, cut} end
local confirmed = tonumber(ARGV[5])
if confirmed > 0 then
  local rec = redis.call('LINDEX', KEYS[2], confirmed - 1)
  if not rec or redis.sha1hex(rec) ~= ARGV[6] then
    local why = 'record ' .. confirmed .. ', written and confirmed by a replica before a fail-over, is not in the log on this master (it holds ' ..
      redis.call('LLEN', KEYS[2]) .. ' records); noticed at ' .. ARGV[7]
    redis.call('SET', KEYS[4], why)
    return {-2, why}
  end
end
local head = redis.call('GET', KEYS[1]) or ''
if head ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -1 end
local k = 4
for i = 0, tonumber(ARGV[4]) - 1 do
  local a = 8 + 4 * i
  redis.call('RPUSH', KEYS[2], ARGV[a])
  redis.call('ZADD', KEYS[3], ARGV[a + 2], ARGV[a + 1])
  for j = 1, tonumber(ARGV[a + 3]) do redis.call('ZADD', KEYS[k + j], ARGV[a + 1], ARGV[a + 1]) end
  k = k + tonumber(ARGV[a + 3])
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
