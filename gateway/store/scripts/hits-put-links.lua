-- Stores a dossier's sealed link items once and files the dossier in the link index; everything
-- expires with the dossier record.
-- KEYS[1] dossier record, KEYS[2] dossier links, KEYS[3..] link index zsets.
-- ARGV[1] fallback expiry (ms), ARGV[2] sealed links, ARGV[3] dossier id.
-- Returns 1 when stored, 0 when already stored, -1 when the dossier record is gone.
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -2 then return -1 end
if t == -1 then t = tonumber(ARGV[1]) end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PXAT', t) == false then return 0 end
for k = 3, #KEYS do
  redis.call('ZADD', KEYS[k], 'GT', t, ARGV[3])
  local kt = redis.call('PEXPIRETIME', KEYS[k])
  if kt < t then redis.call('PEXPIREAT', KEYS[k], t) end
end
return 1
