import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortalMessage, PortalStore } from '../../src/portal/store.js';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

const RAW = Buffer.from('From: dr@clinic.test\r\nTo: p@patients.test\r\nSubject: Results\r\n\r\nAll clear.\r\n');

describe('portal web app: concurrent changes to a message', () => {
  let portal: PortalApp | undefined;
  afterEach(async () => {
    await portal?.close();
    portal = undefined;
  });

  it('a revoke that lands between the read and the write of a read receipt stays revoked', async () => {
    let revokeOnce: (() => Promise<void>) | undefined;
    // The revoke is written by another process (`postern portal revoke`) right after the app read the message.
    portal = await portalApp({}, {
      wrap: (files) =>
        new Proxy(files, {
          get(target, prop, receiver) {
            if (prop !== 'get') return Reflect.get(target, prop, receiver) as unknown;
            return async (id: string) => {
              const m = await target.get(id);
              const revoke = revokeOnce;
              revokeOnce = undefined;
              await revoke?.();
              return m;
            };
          },
        }) as PortalStore,
    });
    const m = await portal.files.putMessage(RAW, { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['p@patients.test'], queueId: 'Q1', kind: 'received' });
    const file = join(portal.dataDir, 'portal', 'messages', `${m.id}.json`);
    revokeOnce = async () => {
      const current = JSON.parse(readFileSync(file, 'utf8')) as PortalMessage;
      writeFileSync(file, JSON.stringify({ ...current, revoked: { at: Date.now(), by: 'compliance' } }));
    };
    const cookie = await portal.loggedIn('p@patients.test');
    const page = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200); // the revoke came after the page was allowed
    expect(revokeOnce).toBeUndefined();
    const after = await portal.files.get(m.id);
    expect(after?.revoked?.by).toBe('compliance');
    expect(after?.readAt['p@patients.test']).toBeGreaterThan(0);
    const again = await portal.app.inject({ method: 'GET', url: `/message/${m.id}`, headers: { cookie } });
    expect(again.statusCode).toBe(410);
  });
});
