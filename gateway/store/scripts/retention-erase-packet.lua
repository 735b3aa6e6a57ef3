-- Erases a packet or recall notice: its hash, its mailbox entry, its schedule member; the delivery the
-- source sees turns `expired`.
-- KEYS: packet, mailbox, deliveries, schedule, the packet's version key. ARGV: packet id, partner, schedule member, time, reason,
-- required state ('' for any). Returns 0 when the packet is not in the required state, 1 when it was
-- already gone, 2 when erased now.
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'state') ~= ARGV[6] then return 0 end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[3])
local d = redis.call('HGET', KEYS[3], ARGV[2])
if d then
  local o = cjson.decode(d)
  if o.packetId == ARGV[1] and o.state ~= 'expired' then
    o.state = 'expired'
    o.updatedAt = ARGV[4]
    o.reason = ARGV[5]
    redis.call('HSET', KEYS[3], ARGV[2], cjson.encode(o))
  end
end
return 1 + existed
