import type { PosternConfig } from '../config/schema.js';
import { domainMatches, domainOf } from '../ingress/authorize.js';
import type { ItemMeta } from './types.js';

export type RetentionConfig = PosternConfig['archive']['retention'];
export const DAY_MS = 86_400_000;

/** The retention that applies to an item: the first matching rule, else the default. */
export function retentionOf(meta: ItemMeta, retention: RetentionConfig): { days: number; rule: string } {
  const sender = meta.mailFrom.toLowerCase();
  const rcpts = meta.rcptTo.map((r) => r.toLowerCase());
  const domains = [domainOf(sender), ...rcpts.map(domainOf)].filter(Boolean);
  for (const [i, r] of retention.rules.entries()) {
    if (r.sender && r.sender.toLowerCase() !== sender) continue;
    if (r.recipient && !rcpts.includes(r.recipient.toLowerCase())) continue;
    if (r.domain && !domains.some((d) => domainMatches(r.domain as string, d))) continue;
    if (r.category && !meta.categories.includes(r.category)) continue;
    return { days: r.days, rule: r.id ?? `retention.rules.${i}` };
  }
  return { days: retention.defaultDays, rule: 'retention.defaultDays' };
}

/** No item younger than this can be expired, whatever rule it falls under. */
export function shortestRetentionMs(retention: RetentionConfig): number {
  return Math.min(retention.defaultDays, ...retention.rules.map((r) => r.days)) * DAY_MS;
}
