import type { Decision, ProtectionMethod } from '../types.js';
import { keysWanted, withKeys } from './availability.js';
import { decide, type DecideInput, type MethodAvailability } from './evaluate.js';
import type { FoundKeys } from './recipient-keys.js';
import type { Policy } from './schema.js';

export type KeyFinder = (wanted: { rcpt: string; wants: ('pgp' | 'smime')[] }[]) => Promise<Map<string, FoundKeys>>;

/**
 * Decisions made once the keys are known, so their reasons are right: a first pass says
 * which methods each recipient's policy lists, keys are looked up only for those who
 * could use one, then the decisions are made with that availability. `decided`: the
 * recipients decided on an earlier attempt, whose keys are looked up again (a key may
 * have been imported, discovered or revoked since). The gateway's planner and `policy
 * explain` both decide through this.
 */
export async function decideWithKeys(
  policy: Policy,
  input: DecideInput | undefined,
  o: { keyless: MethodAvailability; decided?: { rcpt: string; candidates: ProtectionMethod[] }[]; find?: KeyFinder | undefined },
): Promise<{ decisions: Decision[]; available: MethodAvailability; found: Map<string, FoundKeys> }> {
  const draft = input ? decide(policy, input, o.keyless) : [];
  const wanted = [...(o.decided ?? []), ...draft]
    .map((d) => ({ rcpt: d.rcpt, wants: keysWanted(d.candidates, d.rcpt, o.keyless) }))
    .filter((w) => w.wants.length);
  const found = o.find && wanted.length ? await o.find(wanted) : new Map<string, FoundKeys>();
  const available = withKeys(o.keyless, found);
  return { decisions: input ? decide(policy, input, available) : [], available, found };
}
