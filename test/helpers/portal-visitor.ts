import { Agent, fetch } from 'undici';

/** The portal's certificate in tests is the self-signed development one. */
const agent = new Agent({ connect: { rejectUnauthorized: false } });

/** A minimal browser: keeps the session cookie, reads the CSRF token from forms. */
export class Visitor {
  cookie = '';
  constructor(private readonly base: string) {}
  async get(path: string) {
    const res = await fetch(`${this.base}${path}`, { headers: { cookie: this.cookie }, redirect: 'manual', dispatcher: agent });
    this.keep(res.headers.get('set-cookie'));
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  }
  async post(path: string, fields: Record<string, string>) {
    const res = await fetch(`${this.base}${path}`, { method: 'POST', headers: { cookie: this.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString(), redirect: 'manual', dispatcher: agent });
    this.keep(res.headers.get('set-cookie'));
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  }
  private keep(setCookie: string | null) {
    const m = setCookie && /(__Host-postern=[^;]*)/.exec(setCookie);
    if (m) this.cookie = m[1] as string;
  }
}
export const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
export const linkIn = (raw: string, kind: 'm' | 'r') => new RegExp(`https://postern\\.test:\\d+(/${kind}/[A-Za-z0-9_-]{43})`).exec(raw)?.[1] as string;

