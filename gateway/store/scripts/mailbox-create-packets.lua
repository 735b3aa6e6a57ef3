-- Stores a dossier's packets, each once per id, files each in its partner's mailbox and the retention
-- schedule and marks its delivery, all atomically: one call for all the packets a fan-out made.
-- KEYS: schedule, deliveries, dossier record, hits, dossier links, dossier companions (a set of further
-- keys kept with the status record, e.g. its exchange records), the dossier record's version key; then
-- per packet: packet, mailbox, pending, the packet's version key (store/record-mac.ts: the packet's
-- fields carry `v` 1 and their MAC).
-- ARGV: the dossier's schedule member; then per packet: number of field/value arguments, store expiry,
-- created, id, partner, delivery, schedule member, due, the dossier's status due and store expiry given
-- this packet, then the packet's fields and values as they are (no JSON for Redis to decode).
-- A packet that already exists is left as it is and nothing of it is written, its delivery neither. The
-- dossier's status record (and its deliveries, hits and links) is made to outlive every packet created:
-- only ever lengthened (GT), never shortened, and nothing is written for a dossier record that is gone.
-- Returns {per packet 1 when created, 0 when it already existed; the deliveries hash as it now is}.
local created = {}
local statusDue, statusExpiry
local a = 2
for k = 8, #KEYS, 4 do
  local n = tonumber(ARGV[a])
  if redis.call('EXISTS', KEYS[k]) == 1 then
    created[#created + 1] = 0
  else
    redis.call('HSET', KEYS[k], unpack(ARGV, a + 10, a + 9 + n))
    redis.call('PEXPIREAT', KEYS[k], ARGV[a + 1])
    redis.call('SET', KEYS[k + 3], '1', 'PXAT', ARGV[a + 1])
    redis.call('ZADD', KEYS[k + 1], ARGV[a + 2], ARGV[a + 3])
    redis.call('HSET', KEYS[2], ARGV[a + 4], ARGV[a + 5])
    redis.call('ZADD', KEYS[1], ARGV[a + 7], ARGV[a + 6])
    redis.call('ZADD', KEYS[k + 2], ARGV[a + 2], ARGV[a + 3])
    -- The latest the created packets ask for (the strings kept as given, compared as numbers).
    if not statusDue or tonumber(ARGV[a + 8]) > tonumber(statusDue) then statusDue = ARGV[a + 8] end
    if not statusExpiry or tonumber(ARGV[a + 9]) > tonumber(statusExpiry) then statusExpiry = ARGV[a + 9] end
    created[#created + 1] = 1
  end
  a = a + 10 + n
end
if statusDue and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZADD', KEYS[1], 'GT', statusDue, ARGV[1])
  for _, k in ipairs({2, 3, 4, 5, 6, 7}) do redis.call('PEXPIREAT', KEYS[k], statusExpiry, 'GT') end
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[6])) do redis.call('PEXPIREAT', c, statusExpiry, 'GT') end
end
return {created, redis.call('HGETALL', KEYS[2])}
