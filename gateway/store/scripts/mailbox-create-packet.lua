-- Stores a packet once per id, files it in the mailbox and marks the delivery, atomically.
-- KEYS: packet, mailbox, deliveries, schedule, pending, dossier record, hits, dossier links, dossier
-- companions (a set of further keys kept with the status record, e.g. its exchange records), the
-- packet's version key and the dossier record's (store/record-mac.ts: the packet's fields carry `v` 1
-- and their MAC).
-- ARGV: number of field/value arguments, store expiry, created, id, partner, delivery, schedule member,
-- due, then the dossier's schedule member, its status due and store expiry given this packet, then the
-- packet's fields and values as they are (no JSON for Redis to decode). The dossier's status record (and
-- its deliveries, hits and links) is made to outlive the packet: only ever lengthened (GT), never
-- shortened, and nothing is written for a dossier record that is gone.
-- Returns 1 when created, 0 when the packet already existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 12, 11 + tonumber(ARGV[1])))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('SET', KEYS[10], '1', 'PXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('ZADD', KEYS[4], 'GT', ARGV[10], ARGV[9])
  for _, k in ipairs({3, 6, 7, 8, 9, 11}) do redis.call('PEXPIREAT', KEYS[k], ARGV[11], 'GT') end
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[9])) do redis.call('PEXPIREAT', c, ARGV[11], 'GT') end
end
return 1
