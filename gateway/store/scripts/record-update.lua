-- Changes an authenticated record (store/record-mac.ts) by compare-and-set on its version: the record's
-- `v` and its version key must both still hold the version the caller read and signed from.
-- KEYS[1] record, KEYS[2] its version key. ARGV[1] expected version, ARGV[2] new version, ARGV[3] new
-- MAC, ARGV[4] number of field/value pairs to set, then those pairs, then the fields to delete.
-- Returns 1 when written, 0 when the record is gone, -1 when the version moved (nothing written).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local n = tonumber(ARGV[4])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n)) end
if #ARGV > 4 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 5 + 2 * n, #ARGV)) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'mac', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
return 1
