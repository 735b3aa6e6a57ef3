-- Seals a record written before records were authenticated (store/record-mac.ts), once: only while it
-- has neither a MAC nor a version key. The version key expires with the record.
-- KEYS[1] record, KEYS[2] its version key. ARGV[1] MAC of the record at version 1.
-- Returns 1 when sealed, 0 when there was nothing to seal.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'mac') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1', 'mac', ARGV[1])
local t = redis.call('PEXPIRETIME', KEYS[1])
if t > 0 then redis.call('SET', KEYS[2], '1', 'PXAT', t) else redis.call('SET', KEYS[2], '1') end
return 1
