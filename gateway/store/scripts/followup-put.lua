-- Replaces a partner's follow-up record on a dossier (after-match: approvals and follow-up packets) if it
-- has not changed since it was read, and makes it live exactly as long as the dossier record.
-- KEYS[1] dossier record, KEYS[2] follow-ups hash, KEYS[3] the dossier's companions set.
-- ARGV[1] fallback expiry (ms), ARGV[2] field (the partner), ARGV[3] the new sealed record, ARGV[4] the
-- sealed record read before ('' for none).
-- Returns 1 when written; -1 when the dossier record is gone, -2 when it was recalled, -3 when the record
-- changed meanwhile (read again and retry): nothing is written then.
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -2 then return -1 end
if t == -1 then t = tonumber(ARGV[1]) end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'withdrawn' or state == 'corrected' then return -2 end
local held = redis.call('HGET', KEYS[2], ARGV[2]) or ''
if held ~= ARGV[4] then return -3 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], t)
redis.call('SADD', KEYS[3], KEYS[2])
local ct = redis.call('PEXPIRETIME', KEYS[3])
if ct < t then redis.call('PEXPIREAT', KEYS[3], t) end
return 1
