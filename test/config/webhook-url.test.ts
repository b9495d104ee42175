import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

const config = (url: string) => `hostname: gw.example.org\nwebhooks:\n  - url: "${url}"\n    events: ['*']\n    secret: 0123456789abcdef0123\n`;

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'test.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('webhooks[].url', () => {
  it('refuses credentials before the host (fetch drops them without a word), naming the key', () => {
    for (const url of ['https://hookuser:WHURLPASS@hooks.example.org/postern', 'https://hookuser@hooks.example.org/postern']) {
      const problems = problemsOf(config(url));
      expect(problems).toEqual([expect.stringMatching(/^webhooks\.0\.url: has user:password@ in it, which is never sent: remove it; the receiver authenticates Postern by the Postern-Signature header \(webhooks\[\]\.secret\)/)]);
      expect(problems.join()).not.toContain('WHURLPASS');
    }
  });

  it('takes a URL with a token in its path or query', () => {
    expect(problemsOf(config('https://hooks.example.org/postern/t0k3n?token=abc'))).toEqual([]);
  });
});
