import { accessSync, constants, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';

/** The directories Postern writes under dataDir (spool, audit trail, archive, portal, key store, dev certificate, webhook outbox). */
const OWN_DIRS = ['spool', 'audit', 'archive', 'portal', 'keys', 'tls', 'webhooks'];

const FIX = 'give the user Postern runs as write access to it, or set dataDir to a directory it can write';

/**
 * Whether this process can write dataDir and the directories Postern keeps in it, each
 * problem naming the directory and the key. Without this, a read-only dataDir showed
 * up as "ENOENT: no such file or directory, mkdir '<dataDir>/spool'" (Node's recursive
 * mkdir reports EROFS so), naming neither the real cause nor the setting. Only Postern's
 * own directories are looked at: others in dataDir (lost+found on a mount point) are
 * none of its business.
 */
export function dataDirProblems(dataDir: string): string[] {
  let stat: Stats | undefined;
  try {
    stat = statSync(dataDir, { throwIfNoEntry: false });
  } catch (err) {
    return [`dataDir: cannot use ${dataDir} (${reason(err)}); ${FIX}`];
  }
  if (!stat) {
    // Made at start, with its parents: the nearest directory that exists must be writable.
    let parent = dirname(dataDir);
    while (parent !== dirname(parent) && !statSync(parent, { throwIfNoEntry: false })) parent = dirname(parent);
    const problem = notWritable(parent);
    return problem ? [`dataDir: ${dataDir} does not exist and cannot be made: ${parent} is not writable (${problem}); ${FIX}`] : [];
  }
  if (!stat.isDirectory()) return [`dataDir: ${dataDir} is not a directory; set dataDir to a directory`];
  return [dataDir, ...ownDirectories(dataDir)].flatMap((dir) => {
    const problem = notWritable(dir);
    return problem ? [`dataDir: ${dir} is not writable (${problem}); ${FIX}`] : [];
  });
}

/** Postern's directories in dataDir that exist, and the directories directly in them (spool/0, audit/0, portal/messages, ...). */
function ownDirectories(dataDir: string): string[] {
  return OWN_DIRS.map((name) => join(dataDir, name)).flatMap((dir) => {
    try {
      if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
      return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))];
    } catch {
      // Cannot even be listed: the access check names it.
      return [dir];
    }
  });
}

/** Why dir cannot be written (and entered), or undefined when it can. */
function notWritable(dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    return reason(err);
  }
}

/** "EROFS: read-only file system", without the path Node appends (the message names it already). */
function reason(err: unknown): string {
  return (err as Error).message.split(',')[0] ?? String(err);
}
