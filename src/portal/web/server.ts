import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PosternConfig } from '../../config/schema.js';
import { EVENTS, type Logger } from '../../events/logger.js';
import type { QueueBackend } from '../../queue/backend.js';
import { enqueueLocal } from '../../queue/enqueue.js';
import { composeMessage } from '../compose.js';
import type { PortalDelivery } from '../deliver.js';
import { identityOf } from '../identity.js';
import { resetLinkCurrent, type Account, type PortalMessage, type PortalStore, type TokenRecord } from '../store.js';
import { recordSuccess } from './lockout.js';
import { releaseLogin, reserveLogin, settleLogin } from './login-failures.js';
import { infoPage, inboxPage, loginForm, messagePage, resetRequestForm, setupPasswordForm, type Layout } from './pages.js';
import { passwordProblem } from './password-rules.js';
import { PortalPasswords, type HashingLimits } from './passwords.js';
import { RateLimits } from './rate-limit.js';
import { clientOf } from './client.js';
import { failureAnswer, logFailure, NOT_FOUND } from './failure.js';
import { formFields } from './form-fields.js';
import { loadLogo } from './logo.js';
import { Refusal } from './refusal.js';
import { replyAllRecipients } from './reply-all.js';
import { replySender } from './reply-sender.js';
import { readReplyUpload, replyFilesLimit, type ReplyUpload } from './reply-upload.js';
import { bodyDocument, parseStored } from './render-message.js';
import { csrfValid, SESSION_COOKIE, SessionStore, type Session } from './sessions.js';

// Images only from the portal itself: no page makes a request to anyone else (the logo is served at /logo).
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface PortalServerOptions {
  config: PosternConfig;
  store: PortalStore;
  delivery: PortalDelivery;
  queue: QueueBackend;
  log: Logger;
  tls: { cert: string; key: string };
  /** Bounds of password hashing (default: two at once, five seconds' wait). */
  hashing?: HashingLimits | undefined;
}

interface Ctx {
  /** Undefined: the visitor has no stored session (see context). */
  sid: string | undefined;
  session: Session;
  layout: Layout;
}

/**
 * The recipients' web app: server-rendered pages, no scripts, works at 375 px. Sessions
 * live in __Host- cookies (Secure, HttpOnly, SameSite=Strict), every state change needs
 * the session's CSRF token, and message bodies are shown sanitised in a sandboxed frame
 * under a strict CSP.
 */
export async function createPortalServer(opts: PortalServerOptions): Promise<FastifyInstance> {
  const { config, store, delivery, queue, log } = opts;
  const p = config.portal;
  const sessions = new SessionStore(store, p.sessions.idle, p.sessions.absolute);
  const ident = (address: string) => identityOf(address, p.sms.domain, p.sms.defaultCountry);
  const passwords = await PortalPasswords.create(opts.hashing);
  // Every password the handlers hash goes through the portal's passwords.
  const hashPassword = (password: string) => passwords.hash(password);
  const limits = new RateLimits(store, p.rateLimit);
  const replyFilesBytes = replyFilesLimit(config.smtp.limits.maxMessageSize);
  // req.ip is the client only when X-Forwarded-For comes from a proxy we trust: the rate
  // limits count per req.ip, and anyone else could pick a new address per request.
  const app = Fastify({ https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, logger: false, trustProxy: p.trustProxy, bodyLimit: 1024 * 1024 });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  // A file may use what a reply may hold (replyFilesBytes), and the parser's own cut comes
  // one byte later: readReplyUpload sees the file go over and stops reading, where the cut
  // would read the rest of the file to throw it away.
  await app.register(fastifyMultipart, { limits: { fileSize: replyFilesBytes + 1, files: 10, fields: 10 } });

  app.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', PAGE_CSP);
    if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('strict-transport-security', 'max-age=31536000');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  // Work that goes on after its answer (reset links): the app closes only when it is done.
  const inFlight = new Set<Promise<unknown>>();
  const background = (work: Promise<unknown>) => {
    const tracked = work.catch(() => undefined).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  app.addHook('onClose', async () => {
    await Promise.all(inFlight);
  });

  const logo = await loadLogo(p.organisation.logoFile);
  const layoutFor = (session: Session | undefined): Layout => ({ org: p.organisation.name, logoUrl: logo && '/logo', identity: session?.identity, csrf: session?.csrf });

  const setCookie = (reply: FastifyReply, sid: string) =>
    reply.setCookie(SESSION_COOKIE, sid, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });

  /**
   * The visitor's session; without one, a stand-in that is never stored and whose empty
   * CSRF token matches nothing. A request without a cookie writes nothing: anyone can
   * send those, and the portal shares the spool's disk. (The reply is for withSession.)
   */
  const context = async (req: FastifyRequest, _reply: FastifyReply): Promise<Ctx> => {
    const sid = req.cookies[SESSION_COOKIE];
    const existing = await sessions.get(sid);
    if (sid && existing && (await loggedInSincePasswordSet(existing))) return { sid, session: existing, layout: layoutFor(existing) };
    if (sid && existing) await sessions.destroy(sid);
    const none: Session = { csrf: '', createdAt: Date.now(), lastSeenAt: Date.now() };
    return { sid: undefined, session: none, layout: layoutFor(none) };
  };

  /** A password reset ends every session logged in before it (someone else may hold one). */
  const loggedInSincePasswordSet = async (session: Session): Promise<boolean> => {
    if (!session.identity) return true;
    const setAt = (await store.getAccount(session.identity))?.passwordSetAt;
    return !setAt || (session.loggedInAt ?? session.createdAt) >= setAt;
  };

  /**
   * For a page with a form (its CSRF token): the visitor's session, made when there is
   * none — short-lived until login (SessionStore) and limited per client address.
   */
  const withSession = async (c: Ctx, req: FastifyRequest, reply: FastifyReply): Promise<Ctx> => {
    if (c.sid) return c;
    await limits.check('sessions', req.ip);
    const created = await sessions.create();
    setCookie(reply, created.id);
    return { sid: created.id, session: created.session, layout: layoutFor(created.session) };
  };
  const formContext = async (req: FastifyRequest, reply: FastifyReply) => withSession(await context(req, reply), req, reply);

  /** A new session id at login (no fixation), and the old one gone. */
  const logIn = async (req: FastifyRequest, reply: FastifyReply, oldSid: string | undefined, identity: string) => {
    if (oldSid) await sessions.destroy(oldSid);
    const created = await sessions.create(identity);
    setCookie(reply, created.id);
    log.info({ event: EVENTS.portalLogin, identity, ...clientOf(req) }, 'portal login');
  };

  const html = (reply: FastifyReply, body: string, code = 200) => reply.code(code).type('text/html; charset=utf-8').send(body);
  app.setErrorHandler(async (err, req, reply) => {
    // Turned away before the work (rate limits; too many password checks at once, which
    // are never counted as a failure): the page says when to try again.
    if (err instanceof Refusal) {
      reply.header('retry-after', String(err.retryAfterSeconds));
      return html(reply, infoPage(layoutFor(undefined), err.title, err.text, 'alert'), err.status);
    }
    // Anything else gets the portal's page, never fastify's JSON with the error's message.
    const answer = failureAnswer(err);
    if (answer.status >= 500) logFailure(log, req, err);
    return html(reply, infoPage(layoutFor(undefined), answer.title, answer.text, 'alert'), answer.status);
  });
  // A path no route has: the portal's page, never fastify's JSON (it names the method and
  // path, and tells a scanner what answers). Anyone's mistake, not the portal's: no
  // portal.error, and no session read (a scanner's requests cost nothing).
  app.setNotFoundHandler(async (_req, reply) => html(reply, infoPage(layoutFor(undefined), NOT_FOUND.title, NOT_FOUND.text, 'alert'), NOT_FOUND.status));
  const refuseCsrf = (reply: FastifyReply, c: Ctx) => html(reply, infoPage(c.layout, 'Request refused', 'The form had expired or did not come from this site. Go back, reload the page and try again.', 'alert'), 403);
  const canSee = (m: PortalMessage, identity: string) => (m.kind === 'received' ? m.recipients : [m.sender]).some((r) => ident(r) === identity);
  const body = (req: FastifyRequest) => formFields(req.body);

  app.get('/', async (req, reply) => {
    const c = await context(req, reply);
    return reply.redirect(c.session.identity ? '/inbox' : '/login');
  });

  app.get('/healthz', async () => ({ ok: true }));

  // The same for everyone and no secret: the one response a browser may keep.
  app.get('/logo', async (_req, reply) => {
    if (!logo) return reply.code(404).send();
    return reply.type(logo.type).header('cache-control', 'public, max-age=86400').send(logo.bytes);
  });

  /**
   * A notice link's token that can still be used, with its recipient's identity. None
   * when the stored recipient no longer makes one (portal.sms.defaultCountry changed
   * since the notice went out): the link is not valid, rather than an account lookup
   * for nobody.
   */
  const noticeToken = async (token: string): Promise<{ messageId: string; identity: string } | undefined> => {
    const t = await store.getToken(token);
    if (!t || t.kind !== 'notice' || t.expiresAt < Date.now() || !t.messageId) return undefined;
    const identity = ident(t.recipient);
    return identity ? { messageId: t.messageId, identity } : undefined;
  };

  // The link in a notice.
  app.get<{ Params: { token: string } }>('/m/:token', async (req, reply) => {
    const c = await context(req, reply);
    const t = await noticeToken(req.params.token);
    if (!t) return html(reply, infoPage(c.layout, 'Link not valid', 'This link has expired or is not valid. Messages are kept for a limited time; ask the sender to send it again.', 'alert'), 404);
    const { identity } = t;
    if (c.session.identity === identity) return reply.redirect(`/message/${t.messageId}`);
    const account = await store.getAccount(identity);
    const form = await withSession(c, req, reply);
    if (!account) return html(reply, setupPasswordForm(form.layout, identity, `/m/${req.params.token}`));
    return html(reply, loginForm(form.layout, `/message/${t.messageId}`, identity));
  });

  // First visit: set the password (the notice token proves the address).
  app.post<{ Params: { token: string } }>('/m/:token', async (req, reply) => {
    const c = await context(req, reply);
    const f = body(req);
    if (!csrfValid(c.session, f.csrf)) return refuseCsrf(reply, c);
    await limits.check('logins', req.ip);
    const t = await noticeToken(req.params.token);
    if (!t) return html(reply, infoPage(c.layout, 'Link not valid', 'This link has expired or is not valid.', 'alert'), 404);
    const { identity } = t;
    const alreadySet = () => html(reply, loginForm(c.layout, `/message/${t.messageId}`, identity, 'A password is already set for this address. Log in with it.'));
    if (await store.getAccount(identity)) return alreadySet();
    const problem = f.password !== f.confirm ? 'The two passwords differ.' : passwordProblem(f.password ?? '', identity);
    if (problem) return html(reply, setupPasswordForm(c.layout, identity, `/m/${req.params.token}`, problem), 400);
    const passwordHash = await hashPassword(f.password as string);
    // Made only if there is still none, in one step: of two first visits at once (two
    // tabs, or someone else holding the link), one sets the password, the other logs in.
    let created = false;
    await store.updateAccount(identity, (current) => {
      if (current) return undefined;
      created = true;
      const now = Date.now();
      return { address: identity, passwordHash, createdAt: now, passwordSetAt: now, failures: [] };
    });
    if (!created) return alreadySet();
    await logIn(req, reply, c.sid, identity);
    return reply.redirect(`/message/${t.messageId}`, 303);
  });

  app.get<{ Querystring: { next?: string } }>('/login', async (req, reply) => {
    const c = await formContext(req, reply);
    return html(reply, loginForm(c.layout, safeNext(req.query.next)));
  });

  app.post('/login', async (req, reply) => {
    const c = await context(req, reply);
    const f = body(req);
    if (!csrfValid(c.session, f.csrf)) return refuseCsrf(reply, c);
    await limits.check('logins', req.ip);
    const next = safeNext(f.next);
    const identity = ident(f.identity ?? '');
    const account = identity ? await store.getAccount(identity) : undefined;
    const generic = 'The address or the password is not right.';
    const shown = identity ?? f.identity ?? '';
    const lockedPage = (until: number) => html(reply, loginForm(c.layout, next, shown, `Too many failed attempts. Try again after ${new Date(until).toUTCString()}, or reset your password.`), 429);
    const wrong = () => html(reply, loginForm(c.layout, next, shown, generic), 401);
    if (!identity) {
      // Not an address nor a number: nothing to count failures on. The same answer after the same work.
      await passwords.verify(f.password ?? '', undefined);
      // Never what was typed: it may be the password, in the wrong field.
      log.warn({ event: EVENTS.portalLoginFailed, identity: '(invalid)', identityLength: (f.identity ?? '').length, known: false, ...clientOf(req) }, 'portal login failed');
      return wrong();
    }
    // An address without an account gets the answers an account gets, after the same
    // work: its failures are kept and locked by the same rules (login-failures.ts).
    const known = account ? {} : { known: false };
    const hasAccount = Boolean(account);
    // The check is reserved before it is made and settled after, each in one step on the
    // shared record: parallel guesses (on any instance) get no more checks than guesses
    // one after another, and a right one is refused when a lock began during its check.
    const reserved = await reserveLogin(store, identity, hasAccount);
    if (reserved.outcome === 'locked') return lockedPage(reserved.until);
    if (reserved.outcome === 'busy') throw new Refusal(429, 'Too many attempts at once', 'Other logins to this address are being checked. Wait a moment and try again.', 5);
    let ok: boolean;
    try {
      // Without an account, a dummy hash is checked and the answer is no.
      ok = await passwords.verify(f.password ?? '', account?.passwordHash);
    } catch (err) {
      // Never checked (busy hashing): not a failure.
      await releaseLogin(store, identity, hasAccount, reserved.at);
      throw err;
    }
    const after = await settleLogin(store, identity, hasAccount, reserved.at, ok);
    if (after.outcome === 'locked') {
      log.warn({ event: EVENTS.portalLoginFailed, identity, ...known, ...clientOf(req), lockedDuringCheck: true }, 'portal login refused: the account was locked during the check');
      return lockedPage(after.until);
    }
    if (after.outcome === 'failed') {
      log.warn({ event: EVENTS.portalLoginFailed, identity, ...known, ...clientOf(req), failuresLastHour: after.failures }, 'portal login failed');
      if (after.lockedUntil) {
        log.warn({ event: EVENTS.portalLocked, identity, ...known, ...clientOf(req), until: new Date(after.lockedUntil).toISOString() }, account ? 'portal account locked' : 'portal login locked for an address without an account');
        return lockedPage(after.lockedUntil);
      }
      return wrong();
    }
    await logIn(req, reply, c.sid, identity);
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (req, reply) => {
    const c = await context(req, reply);
    if (!csrfValid(c.session, body(req).csrf) || !c.sid) return refuseCsrf(reply, c);
    await sessions.destroy(c.sid);
    reply.clearCookie(SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
    return html(reply, infoPage(layoutFor(undefined), 'Logged out', 'You are logged out.'));
  });

  app.get('/inbox', async (req, reply) => {
    const c = await context(req, reply);
    const identity = c.session.identity;
    if (!identity) return reply.redirect('/login?next=/inbox');
    const list = await store.listFor((a) => ident(a) === identity);
    const now = Date.now();
    const rows = [];
    for (const m of list.filter((x) => x.expiresAt > now)) {
      let subject = '(withdrawn)';
      let from = m.sender;
      if (!m.revoked) {
        const shown = await parseStored(await store.read(m.id));
        subject = shown.subject;
        from = shown.from;
      }
      rows.push({ id: m.id, subject, from, date: m.createdAt, expiresAt: m.expiresAt, revoked: Boolean(m.revoked), kind: m.kind });
    }
    return html(reply, inboxPage(c.layout, rows));
  });

  /** Loads a message the logged-in visitor may see, or answers with the right page. */
  const viewable = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<{ c: Ctx; m: PortalMessage } | undefined> => {
    const c = await context(req, reply);
    const identity = c.session.identity;
    if (!identity) {
      await reply.redirect(`/login?next=${encodeURIComponent(`/message/${req.params.id}`)}`);
      return undefined;
    }
    const m = await store.get(req.params.id);
    if (!m || !canSee(m, identity) || m.expiresAt <= Date.now()) {
      await html(reply, infoPage(c.layout, 'Message not available', 'This message has expired and was destroyed, or it is not addressed to you.', 'alert'), 404);
      return undefined;
    }
    if (m.revoked) {
      await html(reply, infoPage(c.layout, 'Message withdrawn', 'This message was withdrawn by the sender.', 'alert'), 410);
      return undefined;
    }
    return { c, m };
  };

  app.get<{ Params: { id: string }; Querystring: { images?: string } }>('/message/:id', async (req, reply) => {
    const v = await viewable(req, reply);
    if (!v) return reply;
    const { c, m } = v;
    const shown = await parseStored(await store.read(m.id));
    const showImages = req.query.images === '1';
    const { blockedImages } = bodyDocument(shown, showImages);
    log.info({ event: EVENTS.portalView, portalId: m.id, queueId: m.queueId, identity: c.session.identity, ...clientOf(req) }, 'portal message viewed');
    const identity = c.session.identity as string;
    if (m.kind === 'received' && !m.readAt[identity]) {
      // Changed in one step: a revoke since the read above stays. Only the view that
      // records the first read sends the receipt, even when two arrive at once.
      let first = false;
      await store.updateMessage(m.id, (current) => {
        if (current.readAt[identity]) return undefined;
        first = true;
        return { ...current, readAt: { ...current.readAt, [identity]: Date.now() } };
      });
      const wantsReceipt = m.receiptsFor ? m.receiptsFor.some((r) => ident(r) === identity) : p.readReceipts;
      if (first && wantsReceipt && m.sender) {
        const receipt = await composeMessage({ from: `"${p.organisation.name}" <${p.organisation.fromAddress ?? `secure-notice@${config.hostname}`}>`, to: [m.sender], subject: `Read: secure message to ${identity}`, text: `Your secure message to ${identity} was opened on ${new Date().toUTCString()}.`, headers: { 'Auto-Submitted': 'auto-generated' } });
        await enqueueLocal(queue, { hostname: config.hostname, from: '', to: [m.sender], raw: receipt, origin: 'portal-receipt', sessionId: 'portal-receipt' });
      }
    }
    return html(
      reply,
      messagePage(c.layout, { id: m.id, subject: shown.subject, from: shown.from, to: shown.to, date: shown.date, expiresAt: m.expiresAt, attachments: shown.attachments, blockedImages, showImages, canReplyAll: p.replyAll && m.kind === 'received' }),
    );
  });

  // The body, alone, for the sandboxed frame.
  app.get<{ Params: { id: string }; Querystring: { images?: string } }>('/message/:id/content', async (req, reply) => {
    const v = await viewable(req, reply);
    if (!v) return reply;
    const showImages = req.query.images === '1';
    const doc = bodyDocument(await parseStored(await store.read(v.m.id)), showImages);
    reply.header('content-security-policy', `default-src 'none'; style-src 'unsafe-inline'; img-src data:${showImages ? ' https: http:' : ''}; sandbox allow-popups allow-popups-to-escape-sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'`);
    reply.header('x-frame-options', 'SAMEORIGIN');
    return html(reply, doc.html);
  });

  app.get<{ Params: { id: string; n: string } }>('/message/:id/attachment/:n', async (req, reply) => {
    const v = await viewable(req, reply as FastifyReply);
    if (!v) return reply;
    const shown = await parseStored(await store.read(v.m.id));
    const a = shown.attachments[Number(req.params.n)];
    if (!a) return html(reply, infoPage(v.c.layout, 'Not found', 'There is no such attachment.', 'alert'), 404);
    log.info({ event: EVENTS.portalDownload, portalId: v.m.id, queueId: v.m.queueId, identity: v.c.session.identity, ...clientOf(req), attachment: Number(req.params.n), size: a.size }, 'portal attachment downloaded');
    const name = a.filename.replace(/[\r\n"\\]/g, '_');
    reply.header('content-disposition', `attachment; filename="${name.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`);
    return reply.type('application/octet-stream').send(a.content);
  });

  /**
   * A multipart reply, read only as far as it is wanted (readReplyUpload). Stopped early,
   * the rest of the body stays unread, so the connection cannot carry another request:
   * it ends with the answer, which lets the client stop sending.
   */
  const readUpload = async (req: FastifyRequest, reply: FastifyReply, session: Session): Promise<ReplyUpload> => {
    let upload: ReplyUpload;
    try {
      upload = await readReplyUpload(req.parts(), (token) => csrfValid(session, token), replyFilesBytes);
    } catch (err) {
      // The parser's own refusals (too many files, a malformed body) stop reading too.
      reply.header('connection', 'close');
      throw err;
    }
    if (upload.outcome !== 'read') reply.header('connection', 'close');
    return upload;
  };
  const urlencodedReply = (f: Record<string, string | undefined>, session: Session): ReplyUpload => {
    if (!csrfValid(session, f.csrf)) return { outcome: 'csrf-refused' };
    return { outcome: 'read', fields: f, files: [] };
  };
  const tooLarge = (reply: FastifyReply, c: Ctx) => {
    const answer = failureAnswer({ statusCode: 413 });
    return html(reply, infoPage(c.layout, answer.title, answer.text, 'alert'), answer.status);
  };

  // A secure reply, with attachments, to the original sender (and all, if allowed).
  app.post<{ Params: { id: string } }>('/message/:id/reply', async (req, reply) => {
    const v = await viewable(req, reply);
    if (!v) return reply;
    const { c, m } = v;
    const identity = c.session.identity as string;
    // Each reply is a message signed for the gateway's own domain: limited per account,
    // counted before the upload is read (refused, it is not: the connection ends).
    try {
      await limits.checkReplies(identity);
    } catch (err) {
      if (req.isMultipart()) reply.header('connection', 'close');
      throw err;
    }
    const form = req.isMultipart() ? await readUpload(req, reply, c.session) : urlencodedReply(body(req), c.session);
    if (form.outcome === 'csrf-refused') return refuseCsrf(reply, c);
    if (form.outcome === 'too-large') return tooLarge(reply, c);
    const { fields, files } = form;
    const text = (fields.text ?? '').trim();
    if (!text && !files.length) return html(reply, infoPage(c.layout, 'Nothing to send', 'Write a reply or attach a file.', 'alert'), 400);
    const original = await parseStored(await store.read(m.id));
    const to = m.kind === 'received' ? [m.sender] : m.recipients;
    const others = p.replyAll && m.kind === 'received' && fields.all === '1' ? replyAllRecipients(original.parsed, { sender: m.sender, matches: (a) => ident(a) === identity }) : [];
    const sender = replySender({
      identity,
      addresses: [...m.recipients, m.sender],
      matches: (a) => ident(a) === identity,
      original: original.parsed,
      smsDomain: p.sms.domain,
      organisation: p.organisation.name,
      gatewayAddress: p.replyFrom ?? `secure-reply@${config.hostname}`,
    });
    const raw = await composeMessage({
      from: sender.from,
      headers: { 'Reply-To': sender.replyTo },
      to,
      cc: others.length ? others : undefined,
      subject: /^re:/i.test(original.subject) ? original.subject : `Re: ${original.subject}`,
      text,
      inReplyTo: original.messageId,
      references: [original.references, original.messageId].filter(Boolean).join(' ') || undefined,
      attachments: files,
    });
    // The files were bounded as they came in; the text and the headers come on top.
    if (raw.length > config.smtp.limits.maxMessageSize) return tooLarge(reply, c);
    await limits.checkReplyBytes(identity, raw.length);
    const queued = await enqueueLocal(queue, { hostname: config.hostname, from: sender.envelopeFrom, to: [...to, ...others], raw, origin: 'portal-reply', sessionId: `portal-reply-${m.id}` });
    const now = Date.now();
    await store.putMessage(raw, { createdAt: now, expiresAt: now + p.expiry, sender: identity, recipients: [...to, ...others], queueId: queued.id, kind: 'reply', inReplyTo: m.id });
    log.info({ event: EVENTS.portalReply, portalId: m.id, identity, ...clientOf(req), replyQueueId: queued.id, attachments: files.length, to: to.length + others.length }, 'portal reply queued');
    return html(reply, infoPage(c.layout, 'Reply sent', 'Your reply was sent securely. A copy is in your messages.'));
  });

  app.get('/reset', async (req, reply) => {
    const c = await formContext(req, reply);
    return html(reply, resetRequestForm(c.layout));
  });

  app.post('/reset', async (req, reply) => {
    const c = await context(req, reply);
    const f = body(req);
    if (!csrfValid(c.session, f.csrf)) return refuseCsrf(reply, c);
    // Each reset is a mail or a paid SMS: limited per client and per address asked for,
    // the latter counted for any address (the answer must not tell which have accounts).
    await limits.check('resets', req.ip);
    const identity = ident(f.identity ?? '');
    if (identity) await limits.checkResetsFor(identity);
    const account = identity ? await store.getAccount(identity) : undefined;
    // Sent after the answer, never waited for: how long the token's write, the queueing or
    // the SMS provider take would tell which addresses have an account. Its outcome is
    // logged; the visitor's answer below is the same either way.
    if (account) background(delivery.sendReset(account.address).then(
      (sent) => log.info({ event: EVENTS.portalReset, identity, ...clientOf(req), ...sent }, 'password reset link sent'),
      (err: Error) => log.error({ event: EVENTS.portalReset, identity, ...clientOf(req), err: err.message }, 'could not send the reset link'),
    ));
    // The same answer either way, at once: no address enumeration.
    return html(reply, resetRequestForm(c.layout, true));
  });

  /** A reset link that may still set a password: a reset token, unused, unexpired, and made since the password was last set. */
  const resetLinkUsable = async (t: TokenRecord): Promise<boolean> =>
    t.kind === 'reset' && !t.usedAt && t.expiresAt >= Date.now() && resetLinkCurrent(t, await store.getAccount(t.recipient));

  app.get<{ Params: { token: string } }>('/r/:token', async (req, reply) => {
    const c = await context(req, reply);
    const t = await store.getToken(req.params.token);
    if (!t || !(await resetLinkUsable(t))) return html(reply, infoPage(c.layout, 'Link not valid', 'This reset link was used already or has expired. Ask for a new one.', 'alert'), 404);
    return html(reply, setupPasswordForm((await withSession(c, req, reply)).layout, t.recipient, `/r/${req.params.token}`));
  });

  app.post<{ Params: { token: string } }>('/r/:token', async (req, reply) => {
    const c = await context(req, reply);
    const f = body(req);
    if (!csrfValid(c.session, f.csrf)) return refuseCsrf(reply, c);
    const t = await store.getToken(req.params.token);
    const notValid = () => html(reply, infoPage(c.layout, 'Link not valid', 'This reset link was used already or has expired.', 'alert'), 404);
    if (!t || !(await resetLinkUsable(t))) return notValid();
    const problem = f.password !== f.confirm ? 'The two passwords differ.' : passwordProblem(f.password ?? '', t.recipient);
    if (problem) return html(reply, setupPasswordForm(c.layout, t.recipient, `/r/${req.params.token}`, problem), 400);
    // Hashed first: a busy refusal (503) must not use up the link.
    const passwordHash = await hashPassword(f.password as string);
    // Used in one step: of two requests with the link at once, only one sets a password.
    if (!(await store.consumeToken(req.params.token, 'reset'))) return notValid();
    // Checked again in the step that sets the password: of two links used at once, the
    // one that comes second finds the password set since it was made.
    let current = true;
    await store.updateAccount(t.recipient, (existing) => {
      current = resetLinkCurrent(t, existing);
      if (!current) return undefined;
      const account: Account = existing ?? { address: t.recipient, passwordHash: '', createdAt: Date.now(), failures: [] };
      account.passwordHash = passwordHash;
      // Every session logged in before now ends (see loggedInSincePasswordSet).
      account.passwordSetAt = Date.now();
      recordSuccess(account);
      return account;
    });
    if (!current) return notValid();
    await logIn(req, reply, c.sid, t.recipient);
    return reply.redirect('/inbox', 303);
  });

  return app;
}

/** Only local paths: the login form must not become an open redirect. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?!\/)[\w/?=&.-]*$/.test(next) ? next : '/inbox';
}
