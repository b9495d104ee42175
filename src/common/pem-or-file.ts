import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Key and certificate settings take either a file name or the PEM text itself (often
 * through ${file:...}). This module is the one place that tells the two apart, and the
 * one place that words "neither", so that a private key never ends up in an error
 * message or a log line because it was mistaken for a file name.
 */

/**
 * A `-----BEGIN <label>-----` line anywhere in the value. OpenSSL skips whatever comes
 * before the first one, so `openssl pkcs12 -nodes` output ("Bag Attributes", "subject=")
 * is PEM text too. A file name never holds a line like this; a PEM block that is cut
 * short is still PEM text, and its reader says that it does not parse.
 */
const PEM_BEGIN_LINE = /^[ \t]*-----BEGIN [^\r\n]*-----/m;

/** Longer than any file name an operator writes into a config. */
const MAX_SHOWN_PATH = 256;
/** One unbroken run of base64: key material pasted without its PEM lines, not a file name. */
const BASE64_RUN = /^[A-Za-z0-9+/=]{40,}$/;

export function isPemText(value: string): boolean {
  return PEM_BEGIN_LINE.test(value);
}

/** The text from its first -----BEGIN line on: readers stricter than OpenSSL (forge, openpgp) do not skip a preamble. */
export function fromFirstPemBlock(text: string): string {
  const begin = PEM_BEGIN_LINE.exec(text);
  return begin ? text.slice(begin.index).trimStart() : text;
}

/**
 * Whether a value can be shown in a message: a file name is, anything that might be
 * secret material (several lines, PEM markers, a long value, a base64 run) is not.
 */
export function looksLikePath(value: string): boolean {
  return value.length > 0 && value.length <= MAX_SHOWN_PATH && !/[\r\n\0]/.test(value) && !value.includes('-----') && !BASE64_RUN.test(value);
}

/** What to say about a value that is neither PEM text nor a file that can be read; echoes the value only when it looks like a path. */
export function unreadablePemOrFile(setting: string, value: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
  if (looksLikePath(value)) return `${setting}: not a PEM block and not a readable file: cannot read ${value} (${code}); fix the path or the file's permissions`;
  return `${setting}: not a PEM block and not a readable file (the value is not shown: it may be secret material); give a file path, or the PEM text with its -----BEGIN and -----END lines`;
}

/** The PEM text of a setting: the value itself, else the file it names; a problem names the setting, never the secret. */
export async function readPemOrFile(setting: string, value: string): Promise<string> {
  if (isPemText(value)) return fromFirstPemBlock(value);
  try {
    return fromFirstPemBlock(await readFile(value, 'utf8'));
  } catch (err) {
    throw new Error(unreadablePemOrFile(setting, value, err));
  }
}

/** readPemOrFile, for callers that cannot wait (constructors). */
export function readPemOrFileSync(setting: string, value: string): string {
  if (isPemText(value)) return fromFirstPemBlock(value);
  try {
    return fromFirstPemBlock(readFileSync(value, 'utf8'));
  } catch (err) {
    throw new Error(unreadablePemOrFile(setting, value, err));
  }
}

/** Checked when the config is loaded, so an unreadable file is named then, not at the first TLS handshake. */
export function pemOrFileProblem(setting: string, value: string): string | undefined {
  if (isPemText(value)) return undefined;
  try {
    accessSync(value, constants.R_OK);
    // A directory passes the access check; reading it at start fails with EISDIR.
    if (statSync(value).isDirectory()) return unreadablePemOrFile(setting, value, { code: 'EISDIR' });
    return undefined;
  } catch (err) {
    return unreadablePemOrFile(setting, value, err);
  }
}
