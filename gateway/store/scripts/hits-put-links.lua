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
  -- A new key takes the dossier's expiry (NX); a key shared with an older dossier is only ever lengthened (GT).
  if redis.call('PEXPIREAT', KEYS[k], t, 'NX') == 0 then redis.call('PEXPIREAT', KEYS[k], t, 'GT') end
end
return 1
