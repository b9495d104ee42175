import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway } from '../helpers/gateway.js';

/**
 * The SMTP listener says what it cannot have as the portal's and the admin listener's do
 * (src/common/listen-error.ts): the setting, the address, what to do. `postern start`
 * probes every address first; this is what a port taken after that probe gives.
 */
describe('smtp.listen that cannot be had', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-smtp-listen-'));
  let holder: Server | undefined;
  afterAll(async () => {
    await new Promise<void>((r) => (holder ? holder.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the setting, the address and what to do', async () => {
    holder = createServer();
    await new Promise<void>((r) => holder!.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as { port: number }).port;
    await expect(startTestGateway({ smtp: { listen: [`127.0.0.1:${port}`] } }, join(dir, 'data'))).rejects.toThrow(
      `smtp.listen 127.0.0.1:${port}: address already in use (EADDRINUSE): another process, or another of these listeners, has it; stop that or choose another port`,
    );
  });
});
