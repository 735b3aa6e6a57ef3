-- Marks a stored dossier recalled.
-- KEYS[1] dossier record. ARGV[1] state, ARGV[2] recall JSON. Returns 1 when marked, 0 when the record is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'recall', ARGV[2])
return 1
