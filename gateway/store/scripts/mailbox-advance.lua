-- Moves a packet to a later state and mirrors it on the dossier's delivery; never moves backwards. The
-- packet is an authenticated record (store/record-mac.ts): written only while its version is still the
-- one the caller read (compare-and-set on the record and its version key), with the new version and MAC.
-- The delivery is the state of the partner's latest packet: once a follow-up has been made after a match
-- request, retrieving the match request again does not move the delivery back to it (its other members,
-- e.g. the match request's id, are kept).
-- KEYS: packet, deliveries, pending, the packet's version key. ARGV: state, time field, time, partner,
-- delivery JSON, packet id, expected version, new version, new MAC.
-- Returns 0 when the packet is gone, 1 when it was already there, 2 when moved, -1 when its version moved.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[7] or redis.call('GET', KEYS[4]) ~= ARGV[7] then return -1 end
local order = { delivered = 1, retrieved = 2, acknowledged = 3 }
if order[ARGV[1]] <= order[state] then return 1 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[2], ARGV[3], 'v', ARGV[8], 'mac', ARGV[9])
redis.call('SET', KEYS[4], ARGV[8], 'KEEPTTL')
redis.call('ZREM', KEYS[3], ARGV[6])
if redis.call('HGET', KEYS[1], 'type') ~= 'recall' then
  local current = redis.call('HGET', KEYS[2], ARGV[4])
  if not current then
    redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
  else
    local d = cjson.decode(current)
    if d.packetId == nil or d.packetId == ARGV[6] then
      d.state = ARGV[1]
      d.updatedAt = ARGV[3]
      d.packetId = ARGV[6]
      redis.call('HSET', KEYS[2], ARGV[4], cjson.encode(d))
    end
  end
end
return 2
