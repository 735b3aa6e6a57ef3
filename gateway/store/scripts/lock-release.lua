-- Releases a lock only when this holder still holds it.
-- KEYS[1] lock. ARGV[1] the holder's token. Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
