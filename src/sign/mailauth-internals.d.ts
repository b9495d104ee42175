// Types for the parts of mailauth (4.x) that dkim-signature.ts builds its signer from; the
// package ships none for them. Only what is used is declared. Its own signer is not used
// because it cannot oversign (its h= lists only fields present, each once).

declare module 'mailauth/lib/dkim/message-parser.js' {
  import { Writable } from 'node:stream';

  /** A header field: `key` lower case (null for a line without a colon), `line` with its folds. */
  export interface HeaderField {
    key: string | null;
    casedKey?: string | undefined;
    line: Buffer;
  }

  export interface ParsedHeaders {
    parsed: HeaderField[];
    original: Buffer;
  }

  /** Splits a message at its first blank line; subclasses get the headers, then the body in chunks. */
  export class MessageParser extends Writable {
    headers: ParsedHeaders | false;
    messageHeaders(headers: ParsedHeaders): Promise<void>;
    nextChunk(chunk: Buffer): Promise<void>;
    finalChunk(): Promise<void>;
  }
}

declare module 'mailauth/lib/dkim/body/index.js' {
  export interface BodyHasher {
    update(chunk: Buffer): void;
    digest(encoding: 'base64'): string;
  }
  /** A body hasher for a canonicalization ('relaxed') and hash ('sha256'); false: no l= limit. */
  export function dkimBody(canonicalization: string, hashAlgo: string, maxBodyLength: number | false): BodyHasher;
}

declare module 'mailauth/lib/dkim/header/relaxed.js' {
  import type { HeaderField } from 'mailauth/lib/dkim/message-parser.js';

  /** The relaxed canonical form of the signed fields and of the DKIM-Signature without b=, and the tags of that signature. */
  export function relaxedHeaders(
    type: 'DKIM',
    signingHeaderLines: { keys: string; headers: HeaderField[] },
    options: { signingDomain: string; selector: string; algorithm: string; canonicalization: string; bodyHash: string; signTime: Date },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
}

declare module 'mailauth/lib/tools.js' {
  /** `DKIM-Signature: ...` from its tags, folded. */
  export function formatSignatureHeaderLine(type: 'DKIM', values: Record<string, unknown>, folded: boolean): string;
}
