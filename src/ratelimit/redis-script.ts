/**
 * The Lua script behind the Redis limiter: one EVALSHA checks and reserves every limit of a request
 * (key, ancestors, per-model, provider model) atomically, however deep the lineage. It is the same
 * algorithm as local.ts, line for line: sliding-window counters with sub-slots kept in one hash per
 * (scope, rule) — fields `<slot>` -> amount, `s` running sum, `lo`/`hi` lowest/highest slot — and a
 * plain counter per calendar month (TTL relative to the gateway's now). Expired slots are dropped when touched (amortised O(1)).
 *
 * KEYS: one storage key per check.
 * admit:  ARGV = now, 'admit', requestCost, tokenCost, moneyCost, shrink(0/1), promptTokens, promptCost,
 *   completionTokens, minCompletion, completionRate, then per check: windowMs, slotMs, resetAtMs, limit,
 *   unit(1=requests,2=tokens,3=cost)
 *   -> {1, -1, 0, completion, cap, slot1, used1, reset1, ...}  or
 *      {0, deniedIndex, retryAfterMs, completion, cap, slot, used, reset (for checks up to the denied one)}
 *   With shrink=1 the amounts come from the Shrink steps (types.ts), exactly as local.ts admitSync.
 * adjust: ARGV = now, 'adjust', then per key: windowMs, slotMs, resetAtMs, slot, delta (corrections of
 *   many requests, summed per key and slot; a key may appear once per slot)
 */
export const LIMIT_SCRIPT = `
local now = tonumber(ARGV[1])
local op = ARGV[2]

local function slide(key, win, slotMs)
  local n = win / slotMs
  local cur = math.floor(now / slotMs)
  local floor = cur - n
  local meta = redis.call('HMGET', key, 's', 'lo', 'hi')
  if not meta[1] then return 0 end
  local sum = tonumber(meta[1])
  local lo = tonumber(meta[2])
  local hi = tonumber(meta[3])
  if hi < floor then
    redis.call('DEL', key)
    return 0
  end
  if lo < floor then
    local fields = {}
    for j = lo, floor - 1 do fields[#fields + 1] = string.format('%d', j) end
    local vals = redis.call('HMGET', key, unpack(fields))
    for k = 1, #vals do
      if vals[k] then sum = sum - tonumber(vals[k]) end
    end
    redis.call('HDEL', key, unpack(fields))
    redis.call('HSET', key, 's', sum, 'lo', floor)
  end
  return sum
end

local function charge(key, win, slotMs, amount)
  local cur = math.floor(now / slotMs)
  if redis.call('HEXISTS', key, 's') == 0 then redis.call('HSET', key, 's', 0, 'lo', cur) end
  redis.call('HINCRBY', key, string.format('%d', cur), amount)
  redis.call('HINCRBY', key, 's', amount)
  redis.call('HSET', key, 'hi', cur)
  redis.call('PEXPIRE', key, win + 2 * slotMs)
  return cur
end

-- A month counter lives until a day after its month ends, counted from the gateway's now, never
-- from Redis's wall clock: the two clocks may disagree (skew, or a test's injected time), and an
-- absolute PEXPIREAT in Redis's past would drop the counter at once.
local function monthTtl(resetAt)
  return math.max(1, resetAt + 86400000 - now)
end

local function resetOf(key, win, slotMs, resetAt)
  if win == 0 then return math.max(0, resetAt - now) end
  local hi = redis.call('HGET', key, 'hi')
  if not hi then return 0 end
  return math.max(0, (tonumber(hi) + win / slotMs + 1) * slotMs - now)
end

local function retryAfter(key, win, slotMs, need)
  local n = win / slotMs
  local cur = math.floor(now / slotMs)
  local fields = {}
  for j = cur - n, cur do fields[#fields + 1] = string.format('%d', j) end
  local vals = redis.call('HMGET', key, unpack(fields))
  local freed = 0
  for k = 1, #vals do
    if vals[k] then freed = freed + tonumber(vals[k]) end
    if freed >= need then return math.max(1, (cur - n + k - 1 + n + 1) * slotMs - now) end
  end
  return win
end

if op == 'admit' then
  local reqCost = tonumber(ARGV[3])
  local tokCost = tonumber(ARGV[4])
  local monCost = tonumber(ARGV[5])
  local H = 11
  local NO_CAP = 9007199254740991
  local function amountOf(unit)
    if unit == '1' then return reqCost elseif unit == '2' then return tokCost else return monCost end
  end
  local used = {}
  for i = 1, #KEYS do
    local b = H + (i - 1) * 5
    local win = tonumber(ARGV[b + 1])
    if win == 0 then used[i] = tonumber(redis.call('GET', KEYS[i]) or '0') else used[i] = slide(KEYS[i], win, tonumber(ARGV[b + 2])) end
  end
  local completion = 0
  local cap = NO_CAP
  if ARGV[6] == '1' then
    local pTok = tonumber(ARGV[7])
    local pCost = tonumber(ARGV[8])
    local rate = tonumber(ARGV[11])
    for i = 1, #KEYS do
      local b = H + (i - 1) * 5
      local unit = ARGV[b + 5]
      if tonumber(ARGV[b + 1]) == 0 and unit ~= '1' then
        local fixed = pCost
        local r = rate
        if unit == '2' then fixed = pTok; r = 1 end
        local room = tonumber(ARGV[b + 4]) - used[i] - fixed
        local allow
        if room < 0 then allow = -1
        elseif r <= 0 then allow = NO_CAP
        else
          allow = math.floor(room / r)
          if allow > 0 and math.ceil(allow * r) > room then allow = allow - 1 end
        end
        if allow < cap then cap = allow end
      end
    end
    completion = tonumber(ARGV[9])
    local minC = tonumber(ARGV[10])
    if cap < completion then
      if cap >= minC then completion = cap else completion = math.min(completion, minC) end
    end
    tokCost = pTok + completion
    monCost = pCost + math.ceil(completion * rate)
  end
  for i = 1, #KEYS do
    local b = H + (i - 1) * 5
    local win = tonumber(ARGV[b + 1])
    local slotMs = tonumber(ARGV[b + 2])
    local resetAt = tonumber(ARGV[b + 3])
    local limit = tonumber(ARGV[b + 4])
    local amount = amountOf(ARGV[b + 5])
    local u = used[i]
    if amount > 0 and u + amount > limit then
      local retry
      if amount > limit then retry = -1
      elseif win == 0 then retry = math.max(1, resetAt - now)
      else retry = retryAfter(KEYS[i], win, slotMs, u + amount - limit) end
      local out = {0, i - 1, retry, completion, cap}
      for j = 1, i do
        local bj = H + (j - 1) * 5
        out[#out + 1] = -1
        out[#out + 1] = math.ceil(used[j])
        out[#out + 1] = resetOf(KEYS[j], tonumber(ARGV[bj + 1]), tonumber(ARGV[bj + 2]), tonumber(ARGV[bj + 3]))
      end
      return out
    end
  end
  local out = {1, -1, 0, completion, cap}
  for i = 1, #KEYS do
    local b = H + (i - 1) * 5
    local win = tonumber(ARGV[b + 1])
    local slotMs = tonumber(ARGV[b + 2])
    local resetAt = tonumber(ARGV[b + 3])
    local amount = amountOf(ARGV[b + 5])
    local slot = -1
    if win == 0 then
      if amount > 0 then
        redis.call('INCRBY', KEYS[i], amount)
        redis.call('PEXPIRE', KEYS[i], monthTtl(resetAt))
      end
    elseif amount > 0 then
      slot = charge(KEYS[i], win, slotMs, amount)
    else
      slot = math.floor(now / slotMs)
    end
    out[#out + 1] = slot
    out[#out + 1] = math.ceil(used[i] + amount)
    out[#out + 1] = resetOf(KEYS[i], win, slotMs, resetAt)
  end
  return out
end

if op == 'adjust' then
  for i = 1, #KEYS do
    local b = 2 + (i - 1) * 5
    local win = tonumber(ARGV[b + 1])
    local slotMs = tonumber(ARGV[b + 2])
    local resetAt = tonumber(ARGV[b + 3])
    local slot = ARGV[b + 4]
    local delta = tonumber(ARGV[b + 5])
    if win == 0 then
      local v = redis.call('INCRBY', KEYS[i], delta)
      if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
      if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], monthTtl(resetAt)) end
    else
      slide(KEYS[i], win, slotMs)
      local v = redis.call('HGET', KEYS[i], slot)
      if v then
        local nv = math.max(0, tonumber(v) + delta)
        redis.call('HSET', KEYS[i], slot, nv)
        redis.call('HINCRBY', KEYS[i], 's', nv - tonumber(v))
      elseif delta > 0 then
        charge(KEYS[i], win, slotMs, delta)
      end
    end
  end
  return 1
end
return redis.error_reply('unknown op')
`;
