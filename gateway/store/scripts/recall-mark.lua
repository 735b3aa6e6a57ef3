-- Marks a stored dossier recalled.
-- KEYS[1] dossier record. ARGV[1] state, ARGV[2] recall JSON. Returns 1 when marked, 0 when the record is gone.
-- The first recall's mark (reason, time, client) is kept: a repeated recall changes nothing recorded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
redis.call('HSETNX', KEYS[1], 'recall', ARGV[2])
return 1
