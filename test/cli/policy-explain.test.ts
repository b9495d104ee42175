import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ENTRY = join(process.cwd(), 'dist', 'cli', 'postern.cjs');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ENTRY, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('postern policy explain / check', () => {
  it('explains each recipient with the shipped policy, without sending anything', async () => {
    const r = await cli(['policy', 'explain', '--policy', 'config/policy.yaml', '--from', 'dr@clinic.example', '--to', 'colleague@hospital.example', 'patient@gmail.com', '--subject', 'Results [secure]']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Subject: Results \[secure\]\s+\[tag \[secure\] found, removed before delivery\]/);
    expect(r.stdout).toMatch(/colleague@hospital\.example\n {2}method: {5}none possible now → portal\n {2}candidates: smime > pgp > portal\n {2}rule: {7}secure-tag/);
    expect(r.stdout).toMatch(/patient@gmail\.com\n[\s\S]*rule: {7}secure-tag/);
  });

  it('reads a message file: detectors, then the decisions', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-explain-')), 'm.eml');
    writeFileSync(file, 'From: a@clinic.example\r\nSubject: Follow-up\r\n\r\nSSN 524-12-3456 and DOB: 03/14/1975\r\n');
    const r = await cli(['policy', 'explain', '--policy', 'config/policy.yaml', '--from', 'a@clinic.example', '--to', 'b@hospital.example', '--file', file, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { detectors: { score: number }; decisions: { ruleId: string; method?: string; reasons: string[] }[] };
    expect(out.detectors.score).toBe(8);
    expect(out.decisions[0]).toMatchObject({ ruleId: 'phi-detected' });
    expect(out.decisions[0]!.method).toBeUndefined();
    expect(out.decisions[0]!.reasons.join(' ')).toMatch(/detector score 8 ≥ 5 \(ssn×1, dob×1\)/);
    expect(r.stdout).not.toContain('524-12-3456');
  });

  it('an ordinary message to a hospital goes by verified TLS', async () => {
    const r = await cli(['policy', 'explain', '--policy', 'config/policy.yaml', '--from', 'a@clinic.example', '--to', 'b@hospital.example', '--subject', 'Lunch']);
    expect(r.stdout).toMatch(/b@hospital\.example\n {2}method: {5}TLS \(verify\)\n[\s\S]*rule: {7}default/);
  });

  it('check validates a policy file and names problems', async () => {
    expect((await cli(['policy', 'check', 'config/policy.yaml'])).stdout).toMatch(/^policy OK: 3 rule\(s\)/);
    const bad = join(mkdtempSync(join(tmpdir(), 'postern-check-')), 'p.yaml');
    writeFileSync(bad, 'defaults: { tls: sometimes }\nrules: [{ id: x, match: { colour: red }, action: {} }]\n');
    const r = await cli(['policy', 'check', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/defaults\.tls: Invalid option/);
    expect(r.stderr).toMatch(/rules\.0\.match: unknown key colour/);
  });
});
