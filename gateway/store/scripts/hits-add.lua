-- Stores the hits not held yet (first one wins) and files the dossier in the link index, atomically;
-- everything expires with the dossier record.
-- KEYS[1] dossier record, KEYS[2] hits hash, KEYS[3..] link index zsets.
-- ARGV[1] fallback expiry (ms), ARGV[2] number of hits, then id/sealed pairs, then the dossier id, then
-- '1' to refuse a recalled dossier. Returns {added, total}, {-1, 0} when the dossier record is gone,
-- {-2, 0} when it was recalled (and refusal was asked for): nothing is written then.
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -2 then return {-1, 0} end
if t == -1 then t = tonumber(ARGV[1]) end
local n = tonumber(ARGV[2])
if ARGV[4 + 2 * n] == '1' then
  local state = redis.call('HGET', KEYS[1], 'state')
  if state == 'withdrawn' or state == 'corrected' then return {-2, 0} end
end
local added = 0
for i = 0, n - 1 do
  added = added + redis.call('HSETNX', KEYS[2], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
end
redis.call('PEXPIREAT', KEYS[2], t)
local member = ARGV[3 + 2 * n]
for k = 3, #KEYS do
  redis.call('ZADD', KEYS[k], 'GT', t, member)
  local kt = redis.call('PEXPIRETIME', KEYS[k])
  if kt < t then redis.call('PEXPIREAT', KEYS[k], t) end
end
return {added, redis.call('HLEN', KEYS[2])}
