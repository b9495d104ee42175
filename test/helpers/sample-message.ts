/** 4 KB of every byte value: survives only if a transform keeps attachments byte-identical. */
export const ATTACHMENT = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256));

/**
 * A message with what real clients send: multipart/mixed holding multipart/alternative
 * (text and HTML) and a base64 attachment, CRLF throughout. `headers` go on top.
 */
export function richMessage(headers: string[]): Buffer {
  return Buffer.from(
    [
      ...headers,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="mix"',
      '',
      '--mix',
      'Content-Type: multipart/alternative; boundary="alt"',
      '',
      '--alt',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'The results are in the attachment.',
      '--alt',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>The results are in the <b>attachment</b>.</p>',
      '--alt--',
      '--mix',
      'Content-Type: application/octet-stream; name="results.bin"',
      'Content-Disposition: attachment; filename="results.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      ATTACHMENT.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--mix--',
      '',
    ].join('\r\n'),
  );
}
