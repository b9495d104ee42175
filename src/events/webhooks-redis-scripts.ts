import { LuaScript } from '../queue/redis/lua.js';

/**
 * The Redis webhook outbox's atomic steps (layout: webhooks-redis-outbox.ts). Like the
 * queue's scripts they compute keys from a prefix, so they need a standalone Redis (with
 * or without replicas), and read TIME before writing (effect replication, Redis 5+; Postern
 * as a whole needs 6.2, checked at connect: src/queue/redis/version.ts).
 */

/**
 * ARGV 1 key prefix, 2 most deliveries pending per webhook, then six per event: id, hook,
 * event JSON, due (epoch ms), expire at (epoch ms), set ttl (ms). Records deliveries, each
 * only if it is not there yet: a batch whose reply was lost is sent again without
 * resetting what already happened. Then keeps each webhook it added to within the bound,
 * in the same step (no other writer sees it over): the oldest by event time beyond it are
 * given up. A waiting one is deleted; one being attempted is marked `dropped` and its
 * holder deletes it when the attempt ends (settle, or lease expiry in leaseScript), so it
 * is counted then, unless it was delivered. Returns {hook, count given up now, ...}.
 * Without the bound Redis kept every delivery of a receiver that is down until its
 * expiry (giveUpAfter + 1 day): with noeviction, a full Redis refuses every write, mail
 * included.
 */
export const addScript = new LuaScript(
  'webhooks-add',
  `
local p, max = ARGV[1], tonumber(ARGV[2])
local touched = {}
for i = 3, #ARGV, 6 do
  local id, hook = ARGV[i], ARGV[i + 1]
  local d = p .. 'd:' .. id
  if redis.call('EXISTS', d) == 0 then
    redis.call('HSET', d, 'hook', hook, 'event', ARGV[i + 2], 'attempts', 0)
    redis.call('PEXPIREAT', d, ARGV[i + 4])
    local due, age = p .. 'due:' .. hook, p .. 'age:' .. hook
    redis.call('ZADD', due, ARGV[i + 3], id)
    redis.call('PEXPIRE', due, ARGV[i + 5])
    redis.call('ZADD', age, ARGV[i + 3], id)
    redis.call('PEXPIRE', age, ARGV[i + 5])
    touched[hook] = true
  end
end
local out = {}
for hook in pairs(touched) do
  local age = p .. 'age:' .. hook
  local over = redis.call('ZCARD', age) - max
  if over > 0 then
    local n = 0
    for _, id in ipairs(redis.call('ZRANGE', age, 0, over - 1)) do
      local d = p .. 'd:' .. id
      redis.call('ZREM', p .. 'due:' .. hook, id)
      if redis.call('ZSCORE', p .. 'leases:' .. hook, id) then
        if redis.call('EXISTS', d) == 1 then redis.call('HSET', d, 'dropped', 1) end
      elseif redis.call('DEL', d) == 1 then
        n = n + 1
      end
    end
    redis.call('ZREMRANGEBYRANK', age, 0, over - 1)
    if n > 0 then
      out[#out + 1] = hook
      out[#out + 1] = n
    end
  end
end
return out
`,
);

/**
 * KEYS 1 due, 2 leases, 3 fence, 4 age; ARGV 1 delivery-key prefix, 2 now (caller's clock,
 * as the due times are), 3 limit, 4 lease ms, 5 owner, 6 set ttl ms.
 * First returns expired leases (their holder died mid-attempt) to the due set, due now,
 * except those the bound gave up meanwhile (`dropped`): deleted and counted. Then leases
 * up to `limit` due deliveries, each with a fresh fencing token and a deadline on the Redis
 * clock. Returns the rows {id, token, event JSON, attempts}, the earliest due time left,
 * how many dropped ones it deleted, and how many it found expired (the backstop: nobody
 * took them within giveUpAfter + 1 day, every instance down): given up, counted by the caller.
 */
export const leaseScript = new LuaScript(
  'webhooks-lease',
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dropped, expired = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], id)
  local d = ARGV[1] .. id
  if redis.call('HEXISTS', d, 'dropped') == 1 then
    redis.call('DEL', d)
    dropped = dropped + 1
  elseif redis.call('EXISTS', d) == 1 then
    redis.call('HDEL', d, 'owner', 'token')
    redis.call('ZADD', KEYS[1], ARGV[2], id)
  elseif redis.call('ZREM', KEYS[4], id) == 1 then
    expired = expired + 1
  end
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  redis.call('ZREM', KEYS[1], id)
  local d = ARGV[1] .. id
  local f = redis.call('HMGET', d, 'event', 'attempts')
  if f[1] then
    local token = redis.call('INCR', KEYS[3])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), id)
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
    redis.call('HSET', d, 'owner', ARGV[5], 'token', token)
    out[#out + 1] = {id, tostring(token), f[1], f[2] or '0'}
  elseif redis.call('ZREM', KEYS[4], id) == 1 then
    expired = expired + 1 -- expired (the backstop): no longer pending
  end
end
local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {out, nextDue[2] or false, dropped, expired}
`,
);

/**
 * KEYS 1 delivery, 2 due, 3 leases, 4 age; ARGV 1 mode (done | retry), 2 id, 3 token,
 * 4 due, 5 attempts, 6 set ttl ms.
 * Ends a lease with its token: done deletes the delivery (delivered or given up), retry
 * records the attempts and puts it back in the due set, unless the bound gave it up
 * while it was being attempted: then it is deleted and 2 is returned (1 otherwise). A
 * token that is no longer current (the lease expired and someone took the delivery over)
 * is refused.
 */
export const settleScript = new LuaScript(
  'webhooks-settle',
  `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[3] then
  return redis.error_reply('LEASELOST webhook delivery ' .. ARGV[2] .. ' is no longer leased by this instance (expired and taken over)')
end
redis.call('ZREM', KEYS[3], ARGV[2])
if ARGV[1] == 'done' or redis.call('HEXISTS', KEYS[1], 'dropped') == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[2])
  return ARGV[1] == 'done' and 1 or 2
end
redis.call('HSET', KEYS[1], 'attempts', ARGV[5])
redis.call('HDEL', KEYS[1], 'owner', 'token')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
`,
);
