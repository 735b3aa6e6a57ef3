-- Replaces a dossier's answers (hit or no trace per partner and subject) if none changed since they were
-- read, counts them per agreement, and makes them live exactly as long as the dossier record.
-- KEYS[1] dossier record, KEYS[2] answers hash, KEYS[3] the dossier's companions set, KEYS[4] rates hash.
-- ARGV[1] fallback expiry (ms), ARGV[2] number of answers n, ARGV[3] number of counts m, then n triples
-- (field, sealed answer, the sealed answer read before or '' for none), then m pairs (rate field, increment).
-- Returns {n, total}; {-1, 0} when the dossier record is gone, {-2, 0} when it was recalled, {-3, 0} when
-- an answer changed meanwhile (read again and retry): nothing is written then.
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -2 then return {-1, 0} end
if t == -1 then t = tonumber(ARGV[1]) end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'withdrawn' or state == 'corrected' then return {-2, 0} end
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[3])
for i = 0, n - 1 do
  local held = redis.call('HGET', KEYS[2], ARGV[4 + 3 * i]) or ''
  if held ~= ARGV[6 + 3 * i] then return {-3, 0} end
end
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[4 + 3 * i], ARGV[5 + 3 * i])
end
redis.call('PEXPIREAT', KEYS[2], t)
redis.call('SADD', KEYS[3], KEYS[2])
local ct = redis.call('PEXPIRETIME', KEYS[3])
if ct < t then redis.call('PEXPIREAT', KEYS[3], t) end
local base = 4 + 3 * n
for j = 0, m - 1 do
  redis.call('HINCRBY', KEYS[4], ARGV[base + 2 * j], tonumber(ARGV[base + 2 * j + 1]))
end
return {n, redis.call('HLEN', KEYS[2])}
