import type { FastifyInstance } from 'fastify';
import { explainForConfig } from '../../policy/explain-configured.js';
import { explainFacts } from '../../policy/explain-message.js';
import type { ApiContext } from '../context.js';
import { anyObject, errorSchema, guarded } from '../schemas.js';

interface ExplainBody {
  from: string;
  to: string[];
  subject?: string;
  /** A whole message (RFC 5322 text) to inspect: detectors, headers, subject. */
  message?: string;
  /** Bytes: the size `size` rules see. */
  size?: number;
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
          size: { type: 'integer', minimum: 0, description: "bytes: the message size size rules see (default: the message's own)" },
        },
        required: ['from', 'to'],
        additionalProperties: false,
      },
      response: { 200: anyObject, 500: errorSchema },
    }),
    async (req) => {
      // The policy the gateway decides with now: after a broken edit, the last good one.
      const policy = sources.policy.current();
      const b = req.body;
      // Inspected as the gateway inspects: the subject is part of the message the detectors scan.
      const facts = await explainFacts(policy, { from: b.from, to: b.to, subject: b.subject, message: b.message === undefined ? undefined : Buffer.from(b.message, 'utf8'), size: b.size });
      // Decided as the gateway decides (the CLI's `policy explain` does the same).
      const decisions = facts.error ? [] : await explainForConfig(config, policy, { sender: b.from, recipients: b.to, facts }, sources.tlsForecast);
      return {
        policyFile: sources.policy.source,
        subject: facts.subject,
        size: facts.size,
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
