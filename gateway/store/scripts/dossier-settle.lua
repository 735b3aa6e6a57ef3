-- Makes a dossier stored pending (dossier-create.lua) a kept one, once everything accepting it needs is
-- written: its record is visible from then on, and it and its idempotency key get their full lifetimes.
-- Refused (0) when the pending record has expired meanwhile, or the key is no longer this dossier's.
-- KEYS[1] dossier record, KEYS[2] its deliveries, KEYS[3] its version key, KEYS[4] the idempotency key
-- (absent without one).
-- ARGV[1] record TTL (s), ARGV[2] idempotency TTL (s), ARGV[3] the key's value naming this dossier.
if redis.call('HEXISTS', KEYS[1], 'pending') == 0 then return 0 end
if KEYS[4] and redis.call('GET', KEYS[4]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], 'pending')
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
if KEYS[4] then redis.call('EXPIRE', KEYS[4], ARGV[2]) end
return 1
