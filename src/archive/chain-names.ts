import { readdir } from 'node:fs/promises';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';

/** The chains that have a log under chains/, sorted (the admin chain among them). */
export async function chainNames(layout: ArchiveLayout): Promise<string[]> {
  const names = await readdir(layout.chainsDir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.log')).map((n) => n.slice(0, -4)).sort();
}

/** The journal chains (one per spool shard that ever journaled), sorted. */
export async function journalChainNames(layout: ArchiveLayout): Promise<string[]> {
  return (await chainNames(layout)).filter((n) => n !== ADMIN_CHAIN);
}
