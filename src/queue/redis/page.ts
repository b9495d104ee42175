import type { Redis } from 'ioredis';
import type { ListPosition, MessagePage } from '../list-page.js';
import { decodeMessage } from './codec.js';
import type { RedisKeys } from './keys.js';
import { LuaScript } from './lua.js';

/**
 * KEYS 1 received; ARGV 1 receivedAt of the position ('' from the start), 2 its id,
 * 3 how many ids to return. Returns {ZCARD, {id, score, id, score, ...}}.
 *
 * The received set is scored by receivedAt, and members of equal score sort by their
 * bytes: exactly the listing's (receivedAt, id) order. The first member after the
 * position is found by rank: those scored below it, plus those of its score whose id
 * sorts at or before its id (binary search over that run of ranks, however long it is),
 * so the position need not be queued any more. One script: rank and range read the same
 * set. Ids are compared byte by byte, because Lua's < follows the server's locale.
 */
const pageScript = new LuaScript(
  'list-page',
  `
local received, t, after, count = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local function atOrBefore(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a <= #b
end
local start = 0
if t ~= '' then
  start = redis.call('ZCOUNT', received, '-inf', '(' .. t)
  local lo, hi = 0, redis.call('ZCOUNT', received, t, t)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if atOrBefore(redis.call('ZRANGE', received, start + mid, start + mid)[1], after) then lo = mid + 1 else hi = mid end
  end
  start = start + lo
end
return {redis.call('ZCARD', received), redis.call('ZRANGE', received, start, start + count - 1, 'WITHSCORES')}
`,
);

/**
 * One page of the shared queue: the ids from the received set (one extra, to know
 * whether more follow), then their envelope and state in one pipeline. A message removed
 * between the two reads is left out; the next page still starts after the last id read.
 */
export async function listPage(redis: Redis, keys: RedisKeys, after: ListPosition | undefined, limit: number): Promise<MessagePage> {
  const [total, flat] = (await pageScript.run(redis, [keys.received], [after ? String(after.receivedAt) : '', after?.id ?? '', limit + 1])) as [number, string[]];
  const read: ListPosition[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) read.push({ id: flat[i] as string, receivedAt: Number(flat[i + 1]) });
  const page = read.slice(0, limit);
  const pipe = redis.pipeline();
  for (const { id } of page) pipe.hmget(keys.msg(id), 'envelope', 'state');
  const rows = page.length ? ((await pipe.exec()) ?? []) : [];
  const messages = [];
  for (const [i, [err, fields]] of rows.entries()) {
    if (err) throw err;
    const [envelopeJson, stateJson] = fields as (string | null)[];
    if (envelopeJson) messages.push(decodeMessage((page[i] as ListPosition).id, envelopeJson, stateJson));
  }
  return { messages, next: read.length > limit ? page[page.length - 1] : undefined, total: Number(total) };
}
