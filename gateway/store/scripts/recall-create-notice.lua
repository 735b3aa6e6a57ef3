-- Stores a recall notice once per id and files it in the partner's mailbox and the retention schedule.
-- KEYS: notice, mailbox, schedule, pending, the notice's version key (store/record-mac.ts: the fields
-- carry `v` 1 and their MAC). ARGV: fields (JSON array), created (ms), id, store expiry
-- (ms), schedule member, due (ms). Returns 1 when created, 0 when it already existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[1])))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('SET', KEYS[5], '1', 'PXAT', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
return 1
