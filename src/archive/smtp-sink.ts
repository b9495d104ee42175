import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import nodemailer from 'nodemailer';
import { writeFileDurably } from '../common/durable-file.js';
import { readPemOrFileSync } from '../common/pem-or-file.js';
import type { PosternConfig } from '../config/schema.js';
import { journalReport } from './journal-report.js';
import { isSmtpItemRefusal } from './smtp-refusal.js';
import type { ArchiveLayout } from './layout.js';
import type { JournalSink, PreparedItem } from './types.js';

export type SmtpSinkConfig = Extract<PosternConfig['archive']['sinks'][number], { type: 'smtp' }>;

const DAY = 86_400_000;

/**
 * Sends each item as a journal report to an archive mailbox over verified TLS only
 * (STARTTLS required, certificate and name checked, TLS 1.2 or later). A marker per
 * queue id, written once the server accepted the report, keeps a retried message from
 * being reported twice; markers live in day folders and go after `keepMarkersMs`.
 */
export class SmtpSink implements JournalSink {
  readonly name: string;
  private readonly transport;
  private readonly markers: string;
  private readonly from: string;

  constructor(
    private readonly sink: SmtpSinkConfig,
    layout: ArchiveLayout,
    private readonly hostname: string,
    private readonly keepMarkersMs: number,
  ) {
    const { host, port } = sink.server;
    this.name = `smtp:${host}:${port}`;
    this.from = sink.from ?? `postern-journal@${hostname}`;
    this.markers = layout.sentDir(`smtp-${createHash('sha256').update(`${host}:${port}:${sink.to}`).digest('hex').slice(0, 12)}`);
    const ca = sink.ca.length ? [...rootCertificates, ...sink.ca.map((f, i) => readPemOrFileSync(`archive.sinks (${this.name}).ca.${i}`, f))] : undefined;
    this.transport = nodemailer.createTransport({
      pool: true,
      maxConnections: 4,
      maxMessages: 100,
      host,
      port,
      secure: port === 465,
      requireTLS: true,
      ...(sink.auth ? { auth: { user: sink.auth.user, pass: sink.auth.pass } } : {}),
      name: hostname,
      connectionTimeout: sink.timeout,
      greetingTimeout: sink.timeout,
      socketTimeout: sink.timeout,
      tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', servername: sink.servername ?? host, ...(ca ? { ca } : {}) },
    });
  }

  async store(item: PreparedItem): Promise<void> {
    const marker = this.markerPath(item.envelope.receivedAt, item.envelope.id);
    if (await stat(marker).then(() => true, () => false)) return;
    const body = await item.openBody();
    await this.transport.sendMail(journalReport(item.meta, body, { from: this.from, to: this.sink.to, hostname: this.hostname }));
    await mkdir(join(marker, '..'), { recursive: true, mode: 0o700 });
    await writeFileDurably(marker, new Date().toISOString());
  }

  refusedItemOnly(err: unknown): boolean {
    return isSmtpItemRefusal(err);
  }

  /** Removes marker days older than any retry could still come from. */
  async pruneMarkers(now = Date.now()): Promise<void> {
    const days = await readdir(this.markers).catch(() => [] as string[]);
    for (const d of days) {
      const t = Date.parse(`${d}T00:00:00Z`);
      if (Number.isFinite(t) && t + DAY + this.keepMarkersMs < now) await rm(join(this.markers, d), { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }

  private markerPath(receivedAt: number, id: string): string {
    return join(this.markers, new Date(receivedAt).toISOString().slice(0, 10), id);
  }
}
