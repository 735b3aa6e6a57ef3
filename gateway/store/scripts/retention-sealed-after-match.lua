-- Whether a dossier's sealed content is kept only for match requests that are all gone (expired and
-- erased, or recalled), and with ARGV[2] = 'erase' erases it then. A sealed dossier is kept after the
-- fan-out only while a match request may still bring a follow-up (gateway/fanout/followup.ts).
-- KEYS[1] dossier record, KEYS[2] deliveries. ARGV[1] the packet key prefix ('<prefix>:packet:'),
-- ARGV[2] 'check' or 'erase'. Returns 1 when it is (or was) so, 0 otherwise.
if redis.call('HEXISTS', KEYS[1], 'sealed') == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'state') == 'accepted' then return 0 end
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
  local d = cjson.decode(v)
  if d.matchPacketId and redis.call('EXISTS', ARGV[1] .. d.matchPacketId) == 1 then return 0 end
end
if ARGV[2] == 'erase' then redis.call('HDEL', KEYS[1], 'sealed') end
return 1
