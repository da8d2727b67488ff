// Small pieces the app's pages share.
import { html } from '/assets/lib/html.js';
import { t } from '/assets/lib/i18n.js';
import { people, presence } from './state.js';

/** A round avatar: the photo, or the first character of the name. Decorative (the name is beside it). */
export function avatar(userId, size = 40) {
  const p = people[String(userId)];
  const name = p ? p.nickname : '?';
  const style = { width: size + 'px', height: size + 'px', fontSize: Math.round(size / 2.4) + 'px' };
  return p && p.avatar_url
    ? html`<img class="avatar" src=${p.avatar_url} alt="" style=${style} />`
    : html`<span class="avatar" aria-hidden="true" style=${style}>${[...name][0] || '?'}</span>`;
}

/** A presence dot with its meaning for screen readers. */
export function dot(userId) {
  const s = presence[String(userId)];
  const online = !!(s && s.online);
  return html`<span class=${'dot' + (online ? ' on' : '')} role="img" aria-label=${online ? t('presence.online') : t('presence.offline')}></span>`;
}

/** A page's header: title, optional back link and actions. */
export function header(title, back, actions) {
  return html`<header class="topbar">
    ${back ? html`<a class="back" href=${back} aria-label=${t('nav.back')}>‹</a>` : null}
    <h1>${title}</h1>
    <span class="spacer"></span>
    ${actions || null}
  </header>`;
}

export function empty(text) {
  return html`<p class="empty muted">${text}</p>`;
}

/** A labelled input bound to `obj[key]`. */
export function field(id, label, obj, key, attrs = {}) {
  return html`<div>
    <label for=${id}>${label}</label>
    <input id=${id} value=${obj[key] ?? ''} onInput=${(e) => { obj[key] = e.target.value; }} ...${attrs} />
  </div>`;
}
