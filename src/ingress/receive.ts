import type { SMTPServerDataStream } from 'smtp-server';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { IncomingEnvelope, QueueBackend, SpoolWriter } from '../queue/backend.js';
import { HeaderScanner } from './header-scan.js';
import { LineEndingGuard } from './line-endings.js';
import { nullSenderFromRefusal } from './null-sender-from.js';
import { reply, SmtpReplyError } from './smtp-error.js';
import { LOOP_HEADER, traceHeaders } from './trace-headers.js';

export interface ReceiveInput {
  stream: SMTPServerDataStream;
  queue: QueueBackend;
  config: PosternConfig;
  log: Logger;
  envelope: IncomingEnvelope;
  clientHostname: string;
  protocol: string;
}

/**
 * Streams one DATA body into the spool while checking it: size, header block size,
 * bare CR/LF (smuggling) and the loop guard. Resolves with the 250 text only after the
 * spool commit is durable; anything that goes wrong before that is a 4xx or 5xx with
 * nothing left behind. The stream is always read to its end, so the session stays in
 * step with the client whatever happens.
 */
export async function receiveMessage(input: ReceiveInput): Promise<string> {
  const { stream, queue, config, log, envelope } = input;
  const { limits, bareLineEndings, loopGuard } = config.smtp;
  const guard = new LineEndingGuard(bareLineEndings);
  const headers = new HeaderScanner(limits.maxHeaderSize);
  const ctx = { queueId: envelope.id, sessionId: envelope.client.sessionId, ip: envelope.client.ip };

  let writer: SpoolWriter | undefined;
  let storeError: Error | undefined;
  try {
    writer = await queue.receive(envelope);
    await writer.write(
      traceHeaders({
        hostname: config.hostname,
        queueId: envelope.id,
        client: envelope.client,
        clientHostname: input.clientHostname,
        protocol: input.protocol,
        rcptTo: envelope.rcptTo,
        date: new Date(envelope.receivedAt),
      }),
    );
  } catch (err) {
    storeError = err as Error;
  }

  let timedOut = false;
  /** Set when the client closed the connection before the end of DATA. */
  let clientGone: Error | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.destroy(new Error('DATA timeout'));
  }, limits.dataTimeout);
  // The limit holds for what is stored: smtp-server counts the bytes as they came, and in
  // normalize mode every bare LF or CR gains a byte, so a body of bare LFs would be stored
  // at up to twice smtp.limits.maxMessageSize. Counted after the guard (a sum per chunk,
  // no copy); our own trace headers are not the client's and do not count.
  let size = 0;
  const tooLarge = () => stream.sizeExceeded || size > limits.maxMessageSize;
  let started = false;
  try {
    for await (const raw of stream as AsyncIterable<Buffer>) {
      const chunk = guard.push(raw);
      size += chunk.length;
      headers.push(chunk);
      if (writer && !storeError && !tooLarge() && !headers.tooLarge && !guard.refused) {
        if (!started && chunk.length) {
          started = true;
          const gap = separatorAfterTrace(chunk);
          if (gap) await writer.write(gap).catch((err: Error) => (storeError = err));
        }
        await writer.write(chunk).catch((err: Error) => {
          storeError = err;
        });
      }
    }
    const tail = guard.end();
    size += tail.length;
    if (tail.length && writer && !storeError && !tooLarge()) await writer.write(tail).catch((err: Error) => (storeError = err));
    headers.end();
  } catch (err) {
    // Only the stream throws here (the writer's failures are caught above): our DATA
    // timeout, or smtp-server ending it because the connection closed mid-message.
    if (timedOut) storeError ??= err as Error;
    else clientGone = err as Error;
  } finally {
    clearTimeout(timer);
  }

  // Nobody is left to answer, and the spool did nothing wrong: not a queue.failed (which
  // operators alert on), unless the spool had already failed before the client left.
  if (clientGone && !storeError) {
    await writer?.abort().catch(() => undefined);
    log.info({ event: EVENTS.smtpDataIncomplete, ...ctx, stage: 'data', err: clientGone.message }, 'client closed the connection before the end of DATA; nothing stored');
    throw reply(451, '4.3.0', 'Connection closed before the end of DATA');
  }

  // A body cut off mid-stream leaves the session out of step with the client (it is still
  // sending): 421 makes smtp-server close the connection after the reply.
  const refusal = timedOut
    ? reply(421, '4.4.2', `No end of DATA within ${limits.dataTimeout} ms (smtp.limits.dataTimeout), closing connection`)
    : checkMessage(tooLarge(), guard, headers, config, limits.maxMessageSize, loopGuard, envelope);
  if (refusal || storeError || !writer) {
    await writer?.abort().catch(() => undefined);
    const err = refusal ?? reply(451, '4.3.0', 'Temporary local problem storing the message, try again later');
    const level = refusal ? 'warn' : 'error';
    log[level]({ event: refusal ? EVENTS.smtpReject : EVENTS.queueFailed, ...ctx, stage: 'data', code: err.responseCode, reason: err.message, err: storeError?.message }, refusal ? 'message refused' : 'spool write failed');
    throw err;
  }

  try {
    const stored = await writer.commit();
    if (log.isLevelEnabled('info')) log.info(
      {
        event: EVENTS.queueAccepted,
        ...ctx,
        from: stored.mailFrom,
        nrcpt: stored.rcptTo.length,
        size: stored.size,
        tls: envelope.client.tls?.protocol,
        cipher: envelope.client.tls?.cipher,
        helo: envelope.client.helo || undefined,
        authUser: envelope.client.authUser,
      },
      'queued',
    );
    return `2.0.0 Ok: queued as ${stored.id}`;
  } catch (err) {
    await writer.abort().catch(() => undefined);
    log.error({ event: EVENTS.queueFailed, ...ctx, err: (err as Error).message }, 'spool commit failed');
    throw reply(451, '4.3.0', 'Temporary local problem storing the message, try again later');
  }
}

function checkMessage(
  tooLarge: boolean,
  guard: LineEndingGuard,
  headers: HeaderScanner,
  config: PosternConfig,
  maxSize: number,
  loopGuard: PosternConfig['smtp']['loopGuard'],
  envelope: IncomingEnvelope,
): SmtpReplyError | undefined {
  if (tooLarge) return reply(552, '5.3.4', `Message size exceeds fixed limit of ${maxSize} bytes`);
  if (guard.nulFound) return reply(554, '5.6.0', 'Message contains a NUL byte (RFC 5321 section 4.1.1.4); refused to prevent SMTP smuggling');
  if (guard.refused) return reply(554, '5.6.0', 'Message contains bare CR or LF line endings (RFC 5321 section 2.3.8); refused to prevent SMTP smuggling');
  if (headers.tooLarge) return reply(552, '5.3.4', `Message header block exceeds ${config.smtp.limits.maxHeaderSize} bytes`);
  let received = 0;
  let stamps = 0;
  const me = config.hostname.toLowerCase();
  const loopName = LOOP_HEADER.toLowerCase();
  for (const [name, value] of headers.fields()) {
    if (name === 'received') received++;
    else if (name === loopName && value.toLowerCase() === me) stamps++;
  }
  if (stamps > loopGuard.maxOwnStamps) return reply(554, '5.4.6', `Routing loop detected: message already passed ${config.hostname} ${stamps} times`);
  if (received > loopGuard.maxReceived) return reply(554, '5.4.6', `Routing loop detected: too many Received headers (${received})`);
  if (envelope.mailFrom === '' && envelope.senderDomains) return nullSenderFromRefusal(headers.fields(), envelope.senderDomains);
  return undefined;
}

const BLANK_LINE = Buffer.from('\r\n');

/**
 * What goes between our trace header fields and the client's message. Nothing, as a rule.
 * A message whose first line starts with a space or tab has no header field to continue:
 * readers end its header section before that line (protect/header-end.ts), so all of it is
 * body. Put right under our X-Postern-Loop field, that line would be read as its folded
 * continuation: the stamp's value changed, and a line of the client's turned into ours.
 * A blank line keeps both as they are read: our fields, then the client's message as body.
 */
function separatorAfterTrace(first: Buffer): Buffer | undefined {
  return first[0] === 0x20 || first[0] === 0x09 ? BLANK_LINE : undefined;
}
