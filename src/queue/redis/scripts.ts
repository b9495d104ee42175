import { LuaScript } from './lua.js';

/**
 * Shared head of every script. KEYS[1..4] are due, leases, received, version (see
 * RedisKeys.common()); ARGV[1] is the message-key prefix. snapshot() returns what the
 * instance caches for its synchronous stats() and nextDueAt(), stamped with the version
 * counter so an older reading never replaces a newer one.
 */
const PREAMBLE = `
local due, leases, received, version = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local msgPrefix = ARGV[1]
local function redisNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function snapshot(changed)
  local v
  if changed then v = redis.call('INCR', version) else v = tonumber(redis.call('GET', version) or '0') end
  local oldest = redis.call('ZRANGE', received, 0, 0, 'WITHSCORES')
  local nextDue = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  return {v, redis.call('ZCARD', received), redis.call('ZCARD', leases), oldest[2] or false, nextDue[2] or false, redisNow()}
end
-- Leases whose holder stopped renewing them go back to the due set, at the due time
-- they had (normally already past, so they are taken at once).
local function reclaim(now)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    local m = msgPrefix .. id
    redis.call('ZREM', leases, id)
    redis.call('HDEL', m, 'owner', 'token')
    local d = redis.call('HGET', m, 'due')
    if d and d ~= '' then redis.call('ZADD', due, d, id) end
  end
  return #expired
end
`;

/**
 * Removes the temp bodies nobody will commit, by reference (the intent record names the
 * owner), never by age alone: those of instances whose liveness key is gone (died
 * mid-DATA, or closed), and records whose key has already expired. A live instance's
 * record always has its key (the first APPEND adds both in one MULTI; commit and abort
 * remove both in one step), so its bodies being received are never touched.
 */
const CLEAN_TMPS = `
local function cleanTmps(tmps, tmpPrefix, instPrefix)
  local cleaned = 0
  for _, member in ipairs(redis.call('SMEMBERS', tmps)) do
    local owner = string.match(member, '^(.-):')
    if not owner or redis.call('EXISTS', instPrefix .. owner) == 0 or redis.call('EXISTS', tmpPrefix .. member) == 0 then
      redis.call('DEL', tmpPrefix .. member)
      redis.call('SREM', tmps, member)
      cleaned = cleaned + 1
    end
  end
  return cleaned
end
`;

/**
 * KEYS 5 tmp, 6 body, 7 msg, 8 tmps; ARGV 2 envelope, 3 state, 4 dueAt ('' if none), 5 receivedAt,
 * 6 id, 7 size, 8 tmp member, 9 wake channel, 10 instance, 11 deadline (Redis clock ms, '' none).
 * Makes a received message visible in one step: the temp body becomes the body, the
 * envelope and state are written, the message joins the due set, the intent record goes.
 * A commit that reaches Redis after its deadline (Redis was stopped with it in its input
 * buffer) is refused: its client has timed out and told the SMTP client 451, and the undo
 * it sent may never arrive (the connection may be gone).
 */
export const commitScript = new LuaScript(
  'commit',
  `${PREAMBLE}
if ARGV[11] ~= '' and redisNow() > tonumber(ARGV[11]) then return redis.error_reply('ERR commit of ' .. ARGV[6] .. ' arrived after its client had given up (Redis did not answer in time)') end
if redis.call('EXISTS', KEYS[7]) == 1 then return redis.error_reply('ERR queue id ' .. ARGV[6] .. ' is already taken') end
local size = tonumber(ARGV[7])
local have = redis.call('STRLEN', KEYS[5])
if have ~= size then
  return redis.error_reply('ERR body of ' .. ARGV[6] .. ' has ' .. have .. ' bytes in Redis, ' .. size .. ' were sent (temp key expired or a write was repeated)')
end
if size > 0 then
  redis.call('RENAME', KEYS[5], KEYS[6])
  redis.call('PERSIST', KEYS[6])
else
  redis.call('SET', KEYS[6], '')
end
redis.call('HSET', KEYS[7], 'envelope', ARGV[2], 'state', ARGV[3], 'due', ARGV[4])
if ARGV[4] ~= '' then redis.call('ZADD', due, ARGV[4], ARGV[6]) end
redis.call('ZADD', received, ARGV[5], ARGV[6])
redis.call('SREM', KEYS[8], ARGV[8])
redis.call('PUBLISH', ARGV[9], ARGV[10])
return snapshot(true)
`,
);

/**
 * KEYS 5 fence; ARGV 2 now (caller's clock, compared with nextAttemptAt), 3 limit,
 * 4 lease time ms, 5 instance.
 * Takes up to `limit` due messages, each with a fresh fencing token and a deadline on the
 * Redis clock (one clock for every instance, whatever their own clocks say).
 */
export const leaseScript = new LuaScript(
  'lease',
  `${PREAMBLE}
local now = redisNow()
local reclaimed = reclaim(now)
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local m = msgPrefix .. id
  redis.call('ZREM', due, id)
  local f = redis.call('HMGET', m, 'envelope', 'state')
  if f[1] then
    local token = redis.call('INCR', KEYS[5])
    redis.call('ZADD', leases, now + tonumber(ARGV[4]), id)
    redis.call('HSET', m, 'owner', ARGV[5], 'token', token)
    out[#out + 1] = {id, tostring(token), f[1], f[2]}
  end
end
return {snapshot(#ids > 0 or reclaimed > 0), out}
`,
);

/**
 * KEYS 5 fence counter; ARGV 2 id, 3 lease time ms, 4 instance.
 * Leases one message by id, due or not, when nobody holds it (an admin's "retry now" or
 * "delete"); returns no row when it is leased already or gone.
 */
export const claimScript = new LuaScript(
  'claim',
  `${PREAMBLE}
local now = redisNow()
local id = ARGV[2]
local m = msgPrefix .. id
local f = redis.call('HMGET', m, 'envelope', 'state')
if not f[1] or redis.call('ZSCORE', leases, id) then return {snapshot(false), false} end
redis.call('ZREM', due, id)
local token = redis.call('INCR', KEYS[5])
redis.call('ZADD', leases, now + tonumber(ARGV[3]), id)
redis.call('HSET', m, 'owner', ARGV[4], 'token', token)
return {snapshot(true), {id, tostring(token), f[1], f[2]}}
`,
);

/**
 * KEYS 5 instance key, 6 tmps; ARGV 2 lease time ms, 3 wake channel, 4 instance, 5 tmp key
 * prefix, 6 instance key prefix, 7.. id/token pairs.
 * The heartbeat: renews the leases still ours, reports the ones that are not, keeps the
 * instance marked alive, returns expired leases of other (dead) instances to the due
 * set, waking everyone when it did, and removes the temp bodies of dead instances (an
 * instance killed mid-DATA leaves one; without this only the next open() anywhere would
 * clean it, and the registry of temp bodies would grow for as long as none restarts).
 */
export const heartbeatScript = new LuaScript(
  'heartbeat',
  `${PREAMBLE}${CLEAN_TMPS}
local now = redisNow()
local lost = {}
for i = 7, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', msgPrefix .. id, 'token') == token then
    redis.call('ZADD', leases, 'XX', now + tonumber(ARGV[2]), id)
  else
    lost[#lost + 1] = id
  end
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
local reclaimed = reclaim(now)
if reclaimed > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
cleanTmps(KEYS[6], ARGV[5], ARGV[6])
return {snapshot(reclaimed > 0), lost}
`,
);

/**
 * KEYS 5 msg, 6 body; ARGV 2 mode (save | release | remove), 3 id, 4 fencing token ('' when
 * the caller holds no lease), 5 state, 6 dueAt, 7 wake channel, 8 instance.
 * Fencing: a message leased to someone must be settled with that lease's token; a token
 * that is no longer current (the lease expired, maybe another instance has it now, or a
 * settle with it ran already) is refused, so a stalled instance, or a write made again
 * after its first try got no answer, cannot overwrite newer progress. '' passes only while
 * nobody holds a lease: an attempt presents the token of its own lease
 * (QueuedMessage.lease), however long after and whoever holds the message by then.
 */
export const settleScript = new LuaScript(
  'settle',
  `${PREAMBLE}
local m, mode, id, token = KEYS[5], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', m) == 0 then
  if mode == 'remove' then redis.call('DEL', KEYS[6]); redis.call('ZREM', due, id); redis.call('ZREM', leases, id); redis.call('ZREM', received, id); return snapshot(true) end
  return redis.error_reply('NOMSG no message ' .. id)
end
local current = redis.call('HGET', m, 'token')
if (current or '') ~= token then
  if token == '' then return redis.error_reply('LEASELOST message ' .. id .. ' is leased by instance ' .. (redis.call('HGET', m, 'owner') or '?')) end
  if not current then return redis.error_reply('LEASELOST lease ' .. token .. ' on ' .. id .. ' is no longer held (settled already, or expired)') end
  return redis.error_reply('LEASELOST lease ' .. token .. ' on ' .. id .. ' is no longer held (expired; instance ' .. (redis.call('HGET', m, 'owner') or '?') .. ' has taken the message since)')
end
redis.call('ZREM', leases, id)
if mode == 'remove' then
  redis.call('DEL', m, KEYS[6])
  redis.call('ZREM', due, id)
  redis.call('ZREM', received, id)
  return snapshot(true)
end
redis.call('HDEL', m, 'owner', 'token')
if mode == 'save' then redis.call('HSET', m, 'state', ARGV[5], 'due', ARGV[6]) end
local d = redis.call('HGET', m, 'due')
if d and d ~= '' then redis.call('ZADD', due, d, id) else redis.call('ZREM', due, id) end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return snapshot(true)
`,
);

/** A fresh reading of the shared queue, changing nothing (metrics scrapes). */
export const statsScript = new LuaScript('stats', `${PREAMBLE}
return snapshot(false)
`);

/**
 * KEYS 5 tmps; ARGV 2 tmp key prefix, 3 instance key prefix.
 * At start-up: the heartbeat's cleaning of temp bodies (CLEAN_TMPS), counted for the log.
 */
export const cleanScript = new LuaScript(
  'clean',
  `${PREAMBLE}${CLEAN_TMPS}
return {snapshot(false), cleanTmps(KEYS[5], ARGV[2], ARGV[3])}
`,
);
