-- Reads an authenticated record (store/record-mac.ts) with the latest version its version key holds.
-- KEYS[1] record, KEYS[2] its version key, optionally KEYS[3] a hash read in the same step (e.g. the
-- dossier's deliveries). ARGV: fields left out of the answer (large sealed ones, never copied: only the
-- other fields' values are read).
-- Returns {field/value list, version key value (nil when absent), KEYS[3]'s field/value list if given};
-- an empty first list when the record is gone.
local skip = {}
for i = 1, #ARGV do skip[ARGV[i]] = true end
local names = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not skip[name] then names[#names + 1] = name end
end
local out = {}
if #names > 0 then
  local values = redis.call('HMGET', KEYS[1], unpack(names))
  for i, name in ipairs(names) do
    out[#out + 1] = name
    out[#out + 1] = values[i]
  end
end
local answer = {out, redis.call('GET', KEYS[2])}
if KEYS[3] then answer[3] = redis.call('HGETALL', KEYS[3]) end
return answer
