-- Appends a batch of audit records in one round trip (group commit), compare-and-set on the chain head.
-- KEYS: head, log, time index, then every record's term indexes in order.
-- ARGV: expected head ('' for none), expected list length, new head, record count, then per record:
-- its JSON, seq, time (ms) and number of term keys.
-- Returns 1 when written, 0 when the head moved (retry), -1 when the list does not match the head.
-- The checks run before any write, so a list of the wrong type or a truncated one writes nothing, and
-- a batch lands whole or not at all.
local head = redis.call('GET', KEYS[1]) or ''
if head ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -1 end
local k = 3
for i = 0, tonumber(ARGV[4]) - 1 do
  local a = 5 + 4 * i
  redis.call('RPUSH', KEYS[2], ARGV[a])
  redis.call('ZADD', KEYS[3], ARGV[a + 2], ARGV[a + 1])
  for j = 1, tonumber(ARGV[a + 3]) do redis.call('ZADD', KEYS[k + j], ARGV[a + 1], ARGV[a + 1]) end
  k = k + tonumber(ARGV[a + 3])
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
