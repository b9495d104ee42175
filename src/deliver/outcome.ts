import type { TlsInfo } from '../tls/verdict.js';
import type { Route } from './router.js';

/** What one attempt decided for one recipient. */
export interface Outcome {
  rcpt: string;
  result: 'delivered' | 'defer' | 'bounce';
  status: string;
  response: string;
  category: string;
  diagnosticType: 'smtp' | 'x-postern';
  relay?: string | undefined;
  remoteMta?: string | undefined;
  /** policy: where the level came from; stsFailure: an MTA-STS discovery or fetch failure (RFC 8460 type). */
  tls?: (TlsInfo & { level: string; policy?: string | undefined; stsFailure?: string | undefined }) | undefined;
  conn?: number | undefined;
  connectMs?: number | undefined;
  transmitMs?: number | undefined;
  route?: Route['source'] | undefined;
  /** Rule and method for the delivery line when the recipient has no decision (see policy/planner.ts Held). */
  rule?: string | undefined;
  method?: string | undefined;
}

/** The same local outcome (ours, not a remote reply) for several recipients. */
export function localOutcomes(rcpts: string[], o: Omit<Outcome, 'rcpt' | 'diagnosticType'>): Outcome[] {
  return rcpts.map((rcpt) => ({ rcpt, diagnosticType: 'x-postern', ...o }));
}
