-- Reads an authenticated record (store/record-mac.ts) with the latest version its version key holds.
-- KEYS[1] record, KEYS[2] its version key. ARGV: fields left out of the answer (large sealed ones).
-- Returns {field/value list, version key value (nil when absent)}; an empty list when the record is gone.
local skip = {}
for i = 1, #ARGV do skip[ARGV[i]] = true end
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  if not skip[h[i]] then
    out[#out + 1] = h[i]
    out[#out + 1] = h[i + 1]
  end
end
return {out, redis.call('GET', KEYS[2])}
