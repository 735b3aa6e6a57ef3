-- Appends a batch of audit records in one round trip (group commit), compare-and-set on the chain head.
-- KEYS: head, log, time index, cut marker, then each term index the batch files records under.
-- ARGV: expected head ('' for none), expected list length, new head, record count, the sequence number
-- and SHA-1 of the last record this writer had confirmed by a replica (0 and '' for none), the time
-- (for the cut message), then per record its JSON, seq and time (ms), then per term key (in KEYS'
-- order) the number of records filed under it and their seqs.
-- Returns 1 when written, 0 when the head moved (retry), -1 when the list does not match the head,
-- {-2, why} when the confirmed record is not in the log (a fail-over promoted a replica that lacks it:
-- the cut marker is set, so every writer refuses from now on), {-3, why} while the cut marker is set.
-- The checks run before any write, so a list of the wrong type or a truncated one writes nothing, and
-- a batch lands whole or not at all.
local cut = redis.call('GET', KEYS[4])
if cut then return {-3, cut} end
local confirmed = tonumber(ARGV[5])
if confirmed > 0 then
  local rec = redis.call('LINDEX', KEYS[2], confirmed - 1)
  if not rec or redis.sha1hex(rec) ~= ARGV[6] then
    local why = 'record ' .. confirmed .. ', written and confirmed by a replica before a fail-over, is not in the log on this master (it holds ' ..
      redis.call('LLEN', KEYS[2]) .. ' records); noticed at ' .. ARGV[7]
    redis.call('SET', KEYS[4], why)
    return {-2, why}
  end
end
local head = redis.call('GET', KEYS[1]) or ''
if head ~= ARGV[1] then return 0 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -1 end
-- Whole batches per call: one RPUSH and one ZADD for the records, one ZADD per term key.
local function each(list, size, fn)
  for i = 1, #list, size do fn(unpack(list, i, math.min(i + size - 1, #list))) end
end
local n = tonumber(ARGV[4])
local rows, times = {}, {}
for i = 0, n - 1 do
  local a = 8 + 3 * i
  rows[#rows + 1] = ARGV[a]
  times[#times + 1] = ARGV[a + 2]
  times[#times + 1] = ARGV[a + 1]
end
each(rows, 500, function(...) redis.call('RPUSH', KEYS[2], ...) end)
each(times, 1000, function(...) redis.call('ZADD', KEYS[3], ...) end)
local a = 8 + 3 * n
for k = 5, #KEYS do
  local members = {}
  for j = 1, tonumber(ARGV[a]) do
    members[#members + 1] = ARGV[a + j]
    members[#members + 1] = ARGV[a + j]
  end
  each(members, 1000, function(...) redis.call('ZADD', KEYS[k], ...) end)
  a = a + tonumber(ARGV[a]) + 1
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
