import { once } from 'node:events';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerAuthenticationResponse } from 'smtp-server';
import type { PosternConfig, AuthUser, ClientRule } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import { newQueueId } from '../queue/ids.js';
import type { ClientInfo } from '../types.js';
import { normalizeIp } from './cidr.js';
import { RelayAuthorizer, domainOf, relayTestForm, senderBinding } from './authorize.js';
import { applyPatches, POSTERN_PATCHES, relayFormOf } from './smtp-server-patches.js';
import { reply, SmtpReplyError } from './smtp-error.js';
import { SmtpAuthenticator } from './smtp-auth.js';
import { receiveMessage } from './receive.js';
import { OFFERED_MAIL_PARAMS, OFFERED_RCPT_PARAMS, unofferedParameter } from './mail-params.js';
import { listenError } from '../common/listen-error.js';
import { isSecureTextAddress } from '../portal/reach.js';

/**
 * Commands smtp-server answers itself that a relay has no use for: sendmail's WIZ (it
 * answered "200 Please pass, oh mighty wizard" to any password), SHELL and KILL, and the
 * proxy commands XCLIENT and XFORWARD (no proxy sits in front of Postern). Disabled, each
 * gets "500 5.5.2 Error: command not recognized" like any unknown command. smtp-server
 * reads a session's own disabledCommands instead of the server's, so every list set on
 * a session carries these too.
 */
const UNUSED_COMMANDS = ['WIZ', 'SHELL', 'KILL', 'XCLIENT', 'XFORWARD'];
/** A session's disabled commands: every list set on a session replaces the server's, so each carries UNUSED_COMMANDS. */
const disabledCommands = (authOffered: boolean): string[] => (authOffered ? UNUSED_COMMANDS : [...UNUSED_COMMANDS, 'AUTH']);

/** Non-ASCII in an address: RFC 6531 allows it only with the SMTPUTF8 parameter on MAIL FROM. */
const NON_ASCII = /[^\x00-\x7f]/;

interface SessionContext {
  client: ClientRule | undefined;
  authUser: AuthUser | undefined;
  ip: string;
}

/** What the readiness checks (src/events/health.ts) say now; code 452 means storage is short. */
export interface Readiness {
  ready: boolean;
  code?: 451 | 452 | undefined;
  reason: string;
}

export interface IngressOptions {
  config: PosternConfig;
  logger: Logger;
  queue: QueueBackend;
  cert: { cert: string; key: string };
  /**
   * Asked at MAIL FROM, RCPT TO and DATA: while not ready, new mail gets 451 4.3.0 (or
   * 452 4.3.1 for insufficient storage) instead of a 250 the gateway could not stand by.
   */
  isReady?: (() => Readiness) | undefined;
}

/** What Ingress.close() uses of smtp-server's connections (not in its typings). */
interface OpenConnection {
  /** The socket the session talks on: the TLS socket after STARTTLS. */
  _socket: Socket;
  _upgrading?: boolean;
  send(code: number, text: string): void;
  close(): void;
}

const destroy = (socket: Socket) => {
  if (!socket.destroyed) socket.destroy();
};

/** Resolves once the socket is closed (never rejects: an 'error' is followed by 'close'). */
const closed = (socket: Socket) => (socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve())));

/** The SMTP listener: authorises the relay client, applies limits and guards, spools. */
export class Ingress {
  private readonly servers: SMTPServer[] = [];
  private readonly sessions = new Map<string, SessionContext>();
  private readonly perIp = new Map<string, number>();
  private readonly authorizer: RelayAuthorizer;
  private readonly authenticator: SmtpAuthenticator;
  private draining = false;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly log: Logger;
  /** Connections taken and turned away at connect (metrics read these at scrape time). */
  readonly connections = { accepted: 0, rejected: 0 };

  constructor(private readonly opts: IngressOptions) {
    applyPatches();
    const { smtp } = opts.config;
    this.authorizer = new RelayAuthorizer(smtp.clients, smtp.auth.users);
    this.log = opts.logger.child({ component: 'ingress' });
    this.authenticator = new SmtpAuthenticator(smtp.auth, this.authorizer, this.log);
  }

  async start(): Promise<{ host: string; port: number }[]> {
    const bound: { host: string; port: number }[] = [];
    for (const addr of this.opts.config.smtp.listen) {
      const server = this.createServer();
      await new Promise<void>((resolve, reject) => {
        // smtp-server re-emits listener errors (EADDRINUSE, EACCES) on itself.
        // Worded as the portal's and the admin listener's are (listen-error.ts): the setting, the address, what to do.
        const fail = (err: Error) => reject(listenError('smtp.listen', addr.host, addr.port, err));
        server.once('error', fail);
        server.listen(addr.port, addr.host, () => {
          server.removeListener('error', fail);
          resolve();
        });
      });
      server.on('error', (err) => this.log.warn({ event: EVENTS.smtpError, err: err.message }, 'SMTP server error'));
      const actual = server.server.address();
      const port = typeof actual === 'object' && actual ? actual.port : addr.port;
      bound.push({ host: addr.host, port });
      this.log.info({ event: EVENTS.smtpListen, host: addr.host, port }, 'SMTP listening');
      this.servers.push(server);
    }
    return bound;
  }

  /** Stop taking new work: new sessions and new transactions get 421 4.3.2. */
  beginDrain(): void {
    this.draining = true;
  }

  /** Resolves when no DATA transaction is in progress, or at the deadline. */
  async waitIdle(deadline: number): Promise<boolean> {
    if (this.inFlight === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Closes listeners; sessions still open are told 421 4.3.2 and closed. Bounded by the
   * stop's deadline (shutdown.timeout, which waitIdle has already used up if a transfer
   * was stalled): smtp-server's own close would wait a closeTimeout more for clients to
   * hang up, and a client that never does would hold the stop that long again. So each
   * socket is destroyed once the 421 and our FIN are out (nothing more can be said on it),
   * and whatever is left at the deadline (a transfer still running) is destroyed then; its
   * onData sees the connection gone and keeps nothing of the message.
   */
  async close(deadline = Date.now()): Promise<void> {
    const sockets = this.servers.flatMap((s) => this.closeServer(s));
    const timer = setTimeout(() => sockets.forEach(destroy), Math.max(0, deadline - Date.now()));
    await Promise.all(sockets.map(closed));
    clearTimeout(timer);
    this.servers.length = 0;
  }

  /** Stops the listener, tells its sessions 421 and ends them; returns their sockets. */
  private closeServer(server: SMTPServer): Socket[] {
    // Its callback is not waited for: the listener stops at once, and what it would wait
    // for, the sessions' sockets, close() waits for itself, up to the deadline.
    server.close(() => undefined);
    const open = (server as unknown as { connections: Set<OpenConnection> }).connections;
    const sockets: Socket[] = [];
    for (const c of [...open]) {
      c.send(421, '4.3.2 Service shutting down, try again later');
      c.close();
      // In the middle of a STARTTLS handshake _socket is the plain socket under the TLS
      // one, and tearing that down from below crashes Node: left to smtp-server's own
      // timers (the process exits anyway).
      if (c._upgrading) continue;
      const socket = c._socket;
      // 'finish': the 421 and our FIN have left; the client's FIN is not waited for.
      if (socket.writableFinished) destroy(socket);
      else socket.once('finish', () => destroy(socket));
      sockets.push(socket);
    }
    return sockets;
  }

  private createServer(): SMTPServer {
    const { config } = this.opts;
    const { smtp } = config;
    return new SMTPServer({
      [POSTERN_PATCHES]: true,
      name: config.hostname,
      banner: smtp.banner,
      key: this.opts.cert.key,
      cert: this.opts.cert.cert,
      minVersion: smtp.tls.minVersion,
      size: smtp.limits.maxMessageSize,
      maxRecipients: smtp.limits.maxRecipients,
      maxClients: smtp.limits.maxConnections,
      socketTimeout: smtp.limits.commandTimeout,
      hideENHANCEDSTATUSCODES: false,
      hideSMTPUTF8: false,
      hide8BITMIME: false,
      hidePIPELINING: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      // Reverse DNS for every connection is pure latency for a relay whose clients are
      // known by network; the Received header records the IP instead.
      disableReverseLookup: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      allowInsecureAuth: false,
      disabledCommands: disabledCommands(this.authorizer.authEnabled),
      logger: false,
      onConnect: (session, cb) => {
        const refused = this.onConnect(session);
        this.connections[refused ? 'rejected' : 'accepted']++;
        cb(refused);
      },
      // AUTH is offered only inside TLS: credentials never cross the wire in clear.
      onSecure: (_socket, session, cb) => {
        session.disabledCommands = disabledCommands(this.authorizer.authEnabled);
        cb();
      },
      onAuth: (auth, session, cb) => {
        this.onAuth(auth, session).then((res) => cb(null, res), (err: Error) => cb(err));
      },
      onMailFrom: (address, session, cb) => cb(this.onMailFrom(address, session)),
      onRcptTo: (address, session, cb) => cb(this.onRcptTo(address, session)),
      onData: (stream, session, cb) => {
        this.onData(stream, session).then(
          (message) => cb(null, message),
          (err: Error) => cb(err),
        );
      },
      onClose: (session) => this.onClose(session),
    } as ConstructorParameters<typeof SMTPServer>[0]);
  }

  private onConnect(session: SMTPServerSession): SmtpReplyError | null {
    const ip = normalizeIp(session.remoteAddress);
    const log = { event: EVENTS.smtpReject, sessionId: session.id, ip, stage: 'connect' };
    if (this.draining) {
      this.log.info({ ...log, code: 421 }, 'shutting down');
      return reply(421, '4.3.2', 'Service shutting down, try again later');
    }
    const client = this.authorizer.clientFor(ip);
    if (!client && !this.authorizer.authEnabled) {
      this.log.warn({ ...log, code: 554 }, 'client not in smtp.clients');
      return reply(554, '5.7.1', `Client host [${ip}] is not permitted to relay through this gateway`);
    }
    const count = (this.perIp.get(ip) ?? 0) + 1;
    if (count > this.opts.config.smtp.limits.maxConnectionsPerIp) {
      this.log.warn({ ...log, code: 421, connections: count - 1 }, 'too many connections from client');
      return reply(421, '4.7.0', 'Too many connections from your address, try again later');
    }
    this.perIp.set(ip, count);
    this.sessions.set(session.id, { client, authUser: undefined, ip });
    if (!session.secure) session.disabledCommands = disabledCommands(false);
    // At info: operators follow accepted connections (README log table); refusals are smtp.reject.
    this.log.info({ event: EVENTS.smtpConnect, sessionId: session.id, ip, client: client?.name }, 'connection');
    return null;
  }

  private onClose(session: SMTPServerSession): void {
    const ctx = this.sessions.get(session.id);
    if (!ctx) return;
    this.sessions.delete(session.id);
    this.log.debug({ event: EVENTS.smtpClose, sessionId: session.id, ip: ctx.ip, transactions: session.transaction - 1 }, 'connection closed');
    const left = (this.perIp.get(ctx.ip) ?? 1) - 1;
    if (left > 0) this.perIp.set(ctx.ip, left);
    else this.perIp.delete(ctx.ip);
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<SMTPServerAuthenticationResponse> {
    const ctx = this.sessions.get(session.id);
    const ip = ctx?.ip ?? normalizeIp(session.remoteAddress);
    // PLAIN: smtp-server's `username` falls back to the authzid when the authcid is
    // empty; Postern checks the authcid and refuses a differing authzid (RFC 4616 §2).
    const username = auth.method === 'PLAIN' ? (auth.authcid ?? auth.username) : auth.username;
    const user = await this.authenticator.authenticate({ username, authzid: auth.authzid, password: auth.password, method: auth.method, ip, sessionId: session.id });
    if (ctx) ctx.authUser = user;
    return { user: user.username };
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): SmtpReplyError | null {
    const ctx = this.sessions.get(session.id);
    if (!ctx) return reply(421, '4.3.0', 'Session state lost, try again');
    const reject = (err: SmtpReplyError, reason: string) => {
      this.log.warn({ event: EVENTS.smtpReject, sessionId: session.id, ip: ctx.ip, stage: 'mail', code: err.responseCode, reason }, reason);
      return err;
    };
    if (this.draining) return reject(reply(421, '4.3.2', 'Service shutting down, try again later'), 'shutting down');
    const mailParam = unofferedParameter(address, OFFERED_MAIL_PARAMS);
    if (mailParam) return reject(reply(555, '5.5.4', `MAIL FROM parameter ${mailParam} is not supported`), `MAIL FROM parameter ${mailParam} not offered`);
    const notReady = this.notReady();
    if (notReady) return reject(notReady.err, notReady.reason);
    if (ctx.client?.requireTls && !session.secure) {
      return reject(reply(530, '5.7.0', 'Must issue a STARTTLS command first'), 'TLS required for this client');
    }
    const sender = address.address;
    const args = address.args as Record<string, unknown> | false;
    if (NON_ASCII.test(localPartOf(sender)) && !(args && args.SMTPUTF8 === true)) {
      return reject(reply(553, '5.6.7', 'Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM (RFC 6531)'), 'non-ASCII sender without SMTPUTF8');
    }
    // The null sender passes here; a session bound to sender domains has its From checked
    // at the end of DATA instead (null-sender-from.ts).
    if (sender !== '' && !this.authorizer.senderAllowed(ctx.client, ctx.authUser, domainOf(sender))) {
      return reject(reply(550, '5.7.1', `Sender domain ${domainOf(sender) || '(none)'} is not permitted for this client`), 'sender domain not allowed');
    }
    return null;
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): SmtpReplyError | null {
    const ctx = this.sessions.get(session.id);
    if (!ctx) return reply(421, '4.3.0', 'Session state lost, try again');
    const reject = (err: SmtpReplyError, reason: string) => {
      this.log.warn({ event: EVENTS.smtpReject, sessionId: session.id, ip: ctx.ip, stage: 'rcpt', code: err.responseCode, reason }, reason);
      return err;
    };
    if (!ctx.client && !ctx.authUser) {
      return reject(reply(550, '5.7.1', 'Relay access denied: client is not authorised'), 'relay denied');
    }
    const notReady = this.notReady();
    if (notReady) return reject(notReady.err, notReady.reason);
    const rcptParam = unofferedParameter(address, OFFERED_RCPT_PARAMS);
    if (rcptParam) return reject(reply(555, '5.5.4', `RCPT TO parameter ${rcptParam} is not supported`), `RCPT TO parameter ${rcptParam} not offered`);
    if (NON_ASCII.test(localPartOf(address.address)) && !session.envelope.smtpUtf8) {
      return reject(reply(553, '5.6.7', 'Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM (RFC 6531)'), 'non-ASCII recipient without SMTPUTF8');
    }
    // RFC 5321 §4.5.1 lets a client write to <postmaster> without a domain. Postern relays
    // outbound and has no mailboxes: taken, it would bounce later, or leave as <postmaster>
    // through a '*' route. Refused now, with where to write instead.
    if (address.address.toLowerCase() === 'postmaster') {
      return reject(reply(550, '5.1.1', 'No local mailboxes on this gateway; write to postmaster@<your domain>'), 'domainless postmaster');
    }
    const form = relayFormOf(address) ?? relayTestForm(address.address);
    if (form) return reject(reply(550, '5.7.1', `Relay access denied: ${form} addresses are not accepted`), `relay-test address (${form})`);
    const portal = this.opts.config.portal;
    // A Secure Text address has no mail server: with the portal off nothing can reach it,
    // and taking it would make it an ordinary recipient mailed over SMTP.
    if (!portal.enabled && isSecureTextAddress(address.address, portal.sms.domain)) {
      return reject(reply(550, '5.1.2', `${address.address}: Secure Text recipients (@${portal.sms.domain}) are reached through the portal, which is off (portal.enabled: false)`), 'Secure Text recipient while the portal is off');
    }
    return null;
  }

  /** The reply for new mail while the gateway is not ready, or undefined when it is. */
  private notReady(): { err: SmtpReplyError; reason: string } | undefined {
    const r = this.opts.isReady?.();
    if (!r || r.ready) return undefined;
    const err =
      r.code === 452
        ? reply(452, '4.3.1', 'Insufficient system storage, try again later')
        : reply(451, '4.3.0', 'Temporary local problem, try again later');
    return { err, reason: `not ready: ${r.reason}` };
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const ctx = this.sessions.get(session.id);
    // Readiness may have gone between RCPT and DATA: take the body, keep nothing, refuse.
    const notReady = this.notReady();
    if (notReady) {
      stream.resume();
      if (!stream.readableEnded) await once(stream, 'end');
      this.log.warn({ event: EVENTS.smtpReject, sessionId: session.id, ip: ctx?.ip, stage: 'data', code: notReady.err.responseCode, reason: notReady.reason }, notReady.reason);
      throw notReady.err;
    }
    this.inFlight++;
    try {
      const client: ClientInfo = {
        ip: ctx?.ip ?? session.remoteAddress,
        helo: session.hostNameAppearsAs || '',
        tls: session.tlsOptions ? { protocol: session.tlsOptions.version ?? session.tlsOptions.standardName ?? 'TLS', cipher: session.tlsOptions.name } : undefined,
        authUser: ctx?.authUser?.username,
        sessionId: session.id,
      };
      const envelope = session.envelope;
      const result = await receiveMessage({
        stream,
        queue: this.opts.queue,
        config: this.opts.config,
        log: this.log,
        envelope: {
          id: newQueueId(),
          receivedAt: Date.now(),
          mailFrom: envelope.mailFrom ? envelope.mailFrom.address : '',
          rcptTo: envelope.rcptTo.map((r) => r.address),
          client,
          bodyType: envelope.bodyType === '8bitmime' ? '8bitmime' : '7bit',
          smtpUtf8: Boolean(envelope.smtpUtf8),
          senderDomains: senderBinding(ctx?.client, ctx?.authUser),
        },
        clientHostname: session.clientHostname,
        protocol: session.transmissionType,
      });
      return result;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }
}

/**
 * The part of an address SMTPUTF8 is judged on. smtp-server hands the domain over in
 * Unicode even when the client sent its A-labels (xn--), so a non-ASCII domain says
 * nothing about what the client sent: refusing on it refused every ASCII client writing
 * to an internationalised domain. The local part arrives as sent.
 */
function localPartOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : address.slice(0, at);
}
