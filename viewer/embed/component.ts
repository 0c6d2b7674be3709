/**
 * The `<audit-history>` custom element, served as /embed/audit-history.js and run in the
 * app's pages. Plain JavaScript kept as text: it runs in browsers, which this project's
 * TypeScript (Node types, no DOM) does not compile for, and a bundler for one file would
 * be a build step more. No framework, so React, Vue, Angular or plain HTML use it alike.
 *
 *   <script src="https://viewer.example/embed/audit-history.js" async></script>
 *   <audit-history token="…" [src="https://viewer.example"] [object="TYPE:ID"]></audit-history>
 *
 * It fetches /embed/history with the token (no cookies: credentials 'omit'), renders into
 * its shadow root with createElement and textContent only (nothing it receives is ever
 * parsed as HTML), and reports its state in the `state` attribute (loading, ready, error)
 * and as `audit-history-load` / `audit-history-error` events (detail: count or reason).
 * Styling: the shadow parts (`::part(event)`, `change`, `field`, `old`, `new`, `error`, …).
 */
export const COMPONENT_SOURCE = String.raw`(() => {
  'use strict';
  if (!window.customElements || customElements.get('audit-history')) return;
  // Where the script came from is where the history is, unless src says otherwise.
  const script = document.currentScript;
  const scriptOrigin = script && script.src ? new URL(script.src).origin : location.origin;
  const MESSAGES = {
    expired: 'This history link has expired. Reload the page to see it again.',
    'not-yet-valid': 'This history link is not valid yet. Check the clock of this device.',
    'bad-signature': 'This history link is not valid.',
    malformed: 'This history link is not valid.',
    'other-object': 'This history link is for another record.',
    'origin-not-allowed': 'This site may not show this history.',
    unavailable: 'The history is not available right now. Try again later.',
    network: 'The history could not be reached. Try again later.',
  };
  const CSS = [
    ':host { display: block; font: 14px/1.4 system-ui, sans-serif; color: #222; }',
    'ol { list-style: none; margin: 0; padding: 0; }',
    'li.event { padding: 6px 0; border-bottom: 1px solid #ddd; }',
    '.meta { color: #555; font-size: 12px; }',
    '.action { font-weight: 600; color: #222; }',
    'ul { margin: 2px 0 0 0; padding-left: 16px; }',
    '.field { font-weight: 600; }',
    '.old { text-decoration: line-through; color: #a33; }',
    '.new { color: #262; }',
    '.error { color: #a33; }',
    '.empty { color: #555; }',
  ].join('\n');
  const shown = (v) => (v === null || v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));

  function el(tag, part, text) {
    const node = document.createElement(tag);
    if (part) {
      node.setAttribute('part', part);
      node.className = part;
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // Right-to-left values (Hebrew, Arabic) stay isolated from the text around them.
  const isolated = (part, text) => el('bdi', part, text);

  class AuditHistory extends HTMLElement {
    static get observedAttributes() {
      return ['src', 'token', 'object'];
    }
    #root;
    #seq = 0;
    constructor() {
      super();
      // Open: the app's tests and tools can read what is shown; nothing secret lives there.
      this.#root = this.attachShadow({ mode: 'open' });
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        this.#root.adoptedStyleSheets = [sheet];
      } catch {
        this.#root.appendChild(el('style', '', CSS));
      }
      this.#content = el('div', 'container');
      this.#root.appendChild(this.#content);
    }
    #content;
    connectedCallback() {
      this.#load();
    }
    attributeChangedCallback(_name, old, value) {
      if (old !== value && this.isConnected) this.#load();
    }
    #url() {
      const base = new URL(this.getAttribute('src') || scriptOrigin, location.href);
      if (base.protocol !== 'https:' && base.protocol !== 'http:') return null;
      if (!base.pathname.endsWith('/')) base.pathname += '/';
      const url = new URL('embed/history', base);
      url.searchParams.set('token', this.getAttribute('token') || '');
      const object = this.getAttribute('object');
      if (object) url.searchParams.set('object', object);
      return url;
    }
    async #load() {
      const seq = ++this.#seq;
      this.setAttribute('state', 'loading');
      let url;
      try {
        url = this.#url();
      } catch {
        url = null;
      }
      if (!url || !this.getAttribute('token')) return this.#fail(seq, 'malformed');
      let response;
      try {
        response = await fetch(url, { credentials: 'omit', mode: 'cors', referrerPolicy: 'no-referrer', cache: 'no-store' });
      } catch {
        return this.#fail(seq, 'network');
      }
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      if (seq !== this.#seq) return;
      if (!response.ok || !body || !Array.isArray(body.events)) {
        const reason = body && typeof body.reason === 'string' && Object.hasOwn(MESSAGES, body.reason) ? body.reason : 'unavailable';
        return this.#fail(seq, reason);
      }
      this.#render(body.events);
      this.setAttribute('state', 'ready');
      this.dispatchEvent(new CustomEvent('audit-history-load', { detail: { count: body.events.length }, bubbles: true, composed: true }));
    }
    #fail(seq, reason) {
      if (seq !== this.#seq) return;
      const message = el('p', 'error', MESSAGES[reason]);
      message.setAttribute('role', 'alert');
      this.#content.replaceChildren(message);
      this.setAttribute('state', 'error');
      this.dispatchEvent(new CustomEvent('audit-history-error', { detail: { reason }, bubbles: true, composed: true }));
    }
    #render(events) {
      if (events.length === 0) {
        this.#content.replaceChildren(el('p', 'empty', 'No changes recorded.'));
        return;
      }
      const list = el('ol', 'list');
      for (const e of events) {
        const item = el('li', 'event');
        const meta = el('div', 'meta');
        const time = el('time', 'time', shown(e.occurred_at));
        time.setAttribute('datetime', shown(e.occurred_at));
        meta.append(time, ' ', el('span', 'action', shown(e.action)));
        if (e.actor_id !== null && e.actor_id !== undefined) meta.append(' by ', isolated('actor', shown(e.actor_id)));
        item.appendChild(meta);
        if (Array.isArray(e.changes) && e.changes.length > 0) {
          const changes = el('ul', 'changes');
          for (const c of e.changes) {
            const change = el('li', 'change');
            change.append(isolated('field', shown(c.field)), ': ', isolated('old', shown(c.old)), ' → ', isolated('new', shown(c.new)));
            changes.appendChild(change);
          }
          item.appendChild(changes);
        }
        list.appendChild(item);
      }
      this.#content.replaceChildren(list);
    }
  }
  customElements.define('audit-history', AuditHistory);
})();
`;
