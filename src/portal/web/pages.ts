import { escapeHtml as e } from '../compose.js';

export interface Layout {
  org: string;
  logoUrl?: string | undefined;
  identity?: string | undefined;
  csrf?: string | undefined;
}

const CSS = `
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#f4f6f8}
header{background:#0b3d66;color:#fff;padding:.75rem 1rem;display:flex;align-items:center;justify-content:space-between;gap:1rem;flex-wrap:wrap}
header h1{font-size:1.1rem;margin:0}header form{margin:0}
main{max-width:48rem;margin:1rem auto;padding:0 1rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin-bottom:1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=email],input[type=password],textarea{width:100%;padding:.6rem;font:inherit;border:1px solid #57606a;border-radius:4px}
textarea{min-height:8rem}
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.1rem;font:inherit;font-weight:600;color:#fff;background:#0b5394;border:0;border-radius:4px;text-decoration:none;cursor:pointer}
button.secondary{background:#57606a}
a{color:#0b5394}:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
.error{color:#a40e26;font-weight:600}.note{color:#444}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
iframe{width:100%;height:60vh;border:1px solid #d0d7de;border-radius:4px;background:#fff}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;word-break:break-word}
@media (max-width:480px){td.hide-small,th.hide-small{display:none}}
`;

export function page(layout: Layout, title: string, body: string): string {
  const logo = layout.logoUrl ? `<img src="${e(layout.logoUrl)}" alt="" height="28"> ` : '';
  const who = layout.identity
    ? `<form method="post" action="/logout"><input type="hidden" name="csrf" value="${e(layout.csrf ?? '')}"><span>${e(layout.identity)}</span> <a href="/inbox" style="color:#fff">Messages</a> <button class="secondary" type="submit" style="margin:0 0 0 .5rem">Log out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${e(title)} — ${e(layout.org)}</title><style>${CSS}</style></head><body><header><h1>${logo}${e(layout.org)}</h1>${who}</header><main id="main">${body}</main></body></html>`;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${e(name)}" value="${e(value)}">`;

export function setupPasswordForm(l: Layout, identity: string, action: string, error?: string): string {
  return page(
    l,
    'Set your password',
    `<div class="card"><h2>Set your password</h2><p>A secure message is waiting for <strong>${e(identity)}</strong>. Choose a password; you will use it for this and later secure messages.</p>${error ? `<p class="error" role="alert">${e(error)}</p>` : ''}<form method="post" action="${e(action)}">${hidden('csrf', l.csrf ?? '')}<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="12"><p class="note">At least 12 characters; mix letters, digits and symbols, or use 16 or more.</p><label for="confirm">Repeat the password</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required><button type="submit">Set password and open</button></form></div>`,
  );
}

export function loginForm(l: Layout, next: string, identity = '', error?: string): string {
  return page(
    l,
    'Log in',
    `<div class="card"><h2>Log in to read your secure messages</h2>${error ? `<p class="error" role="alert">${e(error)}</p>` : ''}<form method="post" action="/login">${hidden('csrf', l.csrf ?? '')}${hidden('next', next)}<label for="identity">Email address or phone number</label><input id="identity" name="identity" type="text" autocomplete="username" value="${e(identity)}" required><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required><button type="submit">Log in</button></form><p><a href="/reset">Forgot your password?</a></p></div>`,
  );
}

export function resetRequestForm(l: Layout, done = false): string {
  return page(
    l,
    'Reset your password',
    `<div class="card"><h2>Reset your password</h2>${done ? '<p role="status">If that address has secure messages, a link to set a new password is on its way. It works once, for 30 minutes.</p>' : `<form method="post" action="/reset">${hidden('csrf', l.csrf ?? '')}<label for="identity">Email address or phone number</label><input id="identity" name="identity" type="text" autocomplete="username" required><button type="submit">Send me a link</button></form>`}</div>`,
  );
}

export function messagePage(
  l: Layout,
  m: { id: string; subject: string; from: string; to: string; date?: Date | undefined; expiresAt: number; attachments: { filename: string; size: number }[]; blockedImages: number; showImages: boolean; canReplyAll: boolean },
): string {
  const atts = m.attachments.length
    ? `<h3>Attachments</h3><ul>${m.attachments.map((a, i) => `<li><a href="/message/${e(m.id)}/attachment/${i}" download>${e(a.filename)}</a> (${formatSize(a.size)})</li>`).join('')}</ul>`
    : '';
  const images = m.blockedImages && !m.showImages ? `<p class="note">${m.blockedImages} remote image(s) blocked to protect your privacy. <a href="/message/${e(m.id)}?images=1">Show images</a></p>` : '';
  return page(
    l,
    m.subject,
    `<div class="card"><h2>${e(m.subject)}</h2><dl><dt>From</dt><dd>${e(m.from)}</dd><dt>To</dt><dd>${e(m.to)}</dd>${m.date ? `<dt>Date</dt><dd>${e(m.date.toUTCString())}</dd>` : ''}<dt>Available until</dt><dd>${e(new Date(m.expiresAt).toUTCString())}</dd></dl></div>${images}<iframe title="Message body" sandbox="allow-popups allow-popups-to-escape-sandbox" src="/message/${e(m.id)}/content${m.showImages ? '?images=1' : ''}"></iframe><div class="card">${atts}<h3>Reply securely</h3><form method="post" action="/message/${e(m.id)}/reply" enctype="multipart/form-data">${hidden('csrf', l.csrf ?? '')}<label for="text">Your reply</label><textarea id="text" name="text" required></textarea><label for="files">Attach files (optional)</label><input id="files" name="files" type="file" multiple>${m.canReplyAll ? '<label><input type="checkbox" name="all" value="1"> Reply to all recipients</label>' : ''}<button type="submit">Send secure reply</button></form></div>`,
  );
}

export function inboxPage(l: Layout, rows: { id: string; subject: string; from: string; date: number; expiresAt: number; revoked: boolean; kind: string }[]): string {
  const body = rows.length
    ? `<table><thead><tr><th>Message</th><th class="hide-small">Received</th><th>Available until</th></tr></thead><tbody>${rows
        .map((r) => `<tr><td>${r.revoked ? `<s>${e(r.subject)}</s> (withdrawn)` : `<a href="/message/${e(r.id)}">${e(r.subject)}</a>`}<br><span class="note">${r.kind === 'reply' ? 'Your reply' : e(r.from)}</span></td><td class="hide-small">${e(new Date(r.date).toUTCString())}</td><td>${e(new Date(r.expiresAt).toUTCString())}</td></tr>`)
        .join('')}</tbody></table>`
    : '<p>No secure messages.</p>';
  return page(l, 'Your secure messages', `<div class="card"><h2>Your secure messages</h2>${body}</div>`);
}

export function infoPage(l: Layout, title: string, text: string, status = 'status'): string {
  return page(l, title, `<div class="card"><h2>${e(title)}</h2><p role="${status}">${e(text)}</p>${l.identity ? '<p><a href="/inbox">Your messages</a></p>' : ''}</div>`);
}

function formatSize(n: number): string {
  return n >= 1_048_576 ? `${(n / 1_048_576).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} bytes`;
}
