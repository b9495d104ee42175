import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../config/load.js';
import { explainForConfig } from '../../policy/explain-configured.js';
import { explainFacts } from '../../policy/explain-message.js';
import { configuredPolicy } from '../../policy/configured.js';
import type { PolicySection } from '../../policy/section.js';
import type { Policy } from '../../policy/schema.js';
import { apiError, type ApiContext } from '../context.js';
import { anyObject, errorSchema, guarded } from '../schemas.js';

interface ExplainBody {
  from: string;
  to: string[];
  subject?: string;
  /** A whole message (RFC 5322 text) to inspect: detectors, headers, subject. */
  message?: string;
}

/** The policy the gateway runs with (its file, read now so the answer follows hot reloads, or its inline section). */
async function currentPolicy(section: PolicySection): Promise<{ policy: Policy; source: string }> {
  try {
    const { policy, source, file } = await configuredPolicy(section);
    return { policy, source: file ? resolve(file) : source };
  } catch (err) {
    if (err instanceof ConfigError) throw apiError(500, `the policy does not validate: ${err.message}`);
    throw apiError(500, `cannot read the policy: ${(err as Error).message}`);
  }
}

export function policyRoutes(app: FastifyInstance, { config, sources }: ApiContext): void {
  app.post<{ Body: ExplainBody }>(
    '/policy/explain',
    guarded('read-only', {
      summary: "Each recipient's decision, the rule that chose it and why, without sending anything",
      tags: ['policy'],
      body: {
        type: 'object',
        properties: {
          from: { type: 'string' },
          to: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: 1000 },
          subject: { type: 'string' },
          message: { type: 'string', description: "a whole message to inspect; with subject, the message's Subject is replaced by it before inspection" },
        },
        required: ['from', 'to'],
        additionalProperties: false,
      },
      response: { 200: anyObject, 500: errorSchema },
    }),
    async (req) => {
      const { policy, source } = await currentPolicy(config.policy);
      const b = req.body;
      // Inspected as the gateway inspects: the subject is part of the message the detectors scan.
      const facts = await explainFacts(policy, { from: b.from, to: b.to, subject: b.subject, message: b.message === undefined ? undefined : Buffer.from(b.message, 'utf8') });
      // Decided as the gateway decides (the CLI's `policy explain` does the same).
      const decisions = facts.error ? [] : await explainForConfig(config, policy, { sender: b.from, recipients: b.to, facts }, sources.tlsForecast);
      return {
        policyFile: source,
        subject: facts.subject,
        detectors: facts.detectors,
        inspectError: facts.error,
        onInspectError: facts.error ? policy.onInspectError : undefined,
        // Whether decisions could use what delivery saw of each MX's TLS (a cluster's primary cannot).
        tlsForecast: sources.tlsForecast ? 'capability cache' : 'not available here',
        decisions,
      };
    },
  );
}
