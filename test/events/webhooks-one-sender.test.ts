import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { configuredHooks, subscribeHooks } from '../../src/events/webhooks-hooks.js';
import type { OutboxEvent } from '../../src/events/webhooks-outbox.js';
import { testConfigInput } from '../helpers/gateway.js';
import { capturedLogger, tempDir } from './helpers.js';

/**
 * Every process of a cluster watches the policy file, so one broken change is logged as
 * policy.rejected by the primary and by each worker. A receiver must get it once: only
 * the process of shard 0 sends it. Events of one process (a delivery) are sent by it.
 */
describe('webhook events every process logs', () => {
  it('policy.rejected is recorded for sending by shard 0 only, not by the primary or another worker; a delivery by whichever logs it', () => {
    const config = validateConfig(testConfigInput(tempDir(), { webhooks: [{ url: 'http://127.0.0.1:1/', events: ['policy.rejected', 'delivered'], secret: 'whsec-test-one-sender-5e8a' }] }));
    const recorded = new Map<string, string[]>();
    for (const shard of ['primary', 0, 1] as const) {
      const { bus, logger } = capturedLogger();
      const events: string[] = [];
      recorded.set(String(shard), events);
      subscribeHooks(bus, configuredHooks(config), (e: OutboxEvent) => events.push(e.event) > 0, logger, 'refused', shard);
      // What each process logs when the file changes to something broken, then a delivery of its own.
      logger.error({ event: 'policy.rejected', file: '/etc/postern/policy.yaml', problems: ['rules.0.match: unknown key colour'] }, 'policy change rejected');
      logger.info({ event: 'delivery.sent', queueId: `Q${shard}`, to: 'a@dest.test', status: 'sent' }, 'delivered');
    }
    expect(Object.fromEntries(recorded)).toEqual({ primary: ['delivered'], 0: ['policy.rejected', 'delivered'], 1: ['delivered'] });
  });
});
