-- Moves a packet to a later state and mirrors it on the dossier's delivery; never moves backwards.
-- KEYS: packet, deliveries, pending. ARGV: state, time field, time, partner, delivery JSON, packet id.
-- The delivery is the state of the partner's latest packet: once a follow-up has been made after a match
-- request, retrieving the match request again does not move the delivery back to it (its other members,
-- e.g. the match request's id, are kept).
-- Returns 0 when the packet is gone, 1 when it was already there, 2 when moved.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
local order = { delivered = 1, retrieved = 2, acknowledged = 3 }
if order[ARGV[1]] <= order[state] then return 1 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[2], ARGV[3])
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
