-- Stores a new dossier's record and its queued deliveries, and claims its idempotency key, in one step:
-- a replica (and so a promoted master after a fail-over) holds all of it or none, never a key naming a
-- dossier that is not there.
-- KEYS[1] dossier record, KEYS[2] its deliveries, KEYS[3] its version key (store/record-mac.ts; the
-- record's fields carry `v` 1 and their MAC), KEYS[4] the idempotency key (absent without one).
-- ARGV[1] record TTL (s), ARGV[2] idempotency value, ARGV[3] idempotency TTL (s), ARGV[4] number of
-- record field/value pairs, then those pairs, then the delivery partner/value pairs.
-- Returns '' when stored, or the idempotency key's earlier value (then nothing was written).
if KEYS[4] then
  local claimed = redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3], 'NX')
  if not claimed then return redis.call('GET', KEYS[4]) end
end
local n = tonumber(ARGV[4])
local fields = {}
for i = 5, 4 + 2 * n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[1])
if #ARGV > 4 + 2 * n then
  local deliveries = {}
  for i = 5 + 2 * n, #ARGV do deliveries[#deliveries + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(deliveries))
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return ''
