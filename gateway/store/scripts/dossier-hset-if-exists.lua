-- Writes one field of a dossier record only while the record still exists (no orphan key without expiry).
-- KEYS[1] dossier record. ARGV[1] field, ARGV[2] value. Returns 1 when written, 0 when the record is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
