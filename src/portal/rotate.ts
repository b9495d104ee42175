import { rewrap, type MasterKey } from './crypto.js';
import type { PortalStore } from './store.js';

/**
 * Re-wraps every data key not under the current master key (both stores' rotate). Each
 * message is changed through updateMessage: a revoke or read receipt at the same moment
 * stays.
 */
export async function rewrapAll(store: Pick<PortalStore, 'all' | 'updateMessage'>, masters: MasterKey[], current: MasterKey): Promise<number> {
  let n = 0;
  for (const m of await store.all()) {
    if (m.sealed.keyId === current.id) continue;
    let changed = false;
    await store.updateMessage(m.id, (now) => {
      if (now.sealed.keyId === current.id) return undefined;
      changed = true;
      return { ...now, sealed: rewrap(now.sealed, masters, current, now.id) };
    });
    if (changed) n++;
  }
  return n;
}
