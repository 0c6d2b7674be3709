import type { HistoryEvent } from '../../query/history';
import type { FieldDiff, ObjectState } from '../../query/state';
import { type Markup, html, href, jsonText } from './html';

/** Links between views: event -> its object, its actor, its request (and that request's other events). */
export function objectLink(type: string, id: string): Markup {
  return html`<a href="${href('/object', { object: `${type}:${id}` })}">${type}:${id}</a>`;
}

export function actorLink(actor: string | null): Markup | null {
  return actor === null ? null : html`<a href="${href('/actor', { actor })}">${actor}</a>`;
}

export function requestLink(e: HistoryEvent): Markup | null {
  return e.request_id === null ? null : html`<a href="${href('/request', { request_id: e.request_id, at: e.occurred_at })}">${e.request_id}</a>`;
}

function value(v: unknown): Markup {
  return v === null || v === undefined ? html`<span class="empty">none</span>` : html`<pre>${jsonText(v)}</pre>`;
}

export function diffTable(diffs: readonly FieldDiff[]): Markup | null {
  if (diffs.length === 0) return null;
  return html`<table class="diff"><caption>Version ${diffs[0]!.version}: field changes</caption>
<thead><tr><th scope="col">field</th><th scope="col">before</th><th scope="col">after</th></tr></thead>
<tbody>${diffs.map((d) => html`<tr><th scope="row">${d.field}</th><td><del>${value(d.old)}</del></td><td><ins>${value(d.new)}</ins></td></tr>`)}</tbody></table>`;
}

function details(e: HistoryEvent, diffs: readonly FieldDiff[] | undefined): Markup {
  const http = e.http_method ? `${e.http_method} ${e.http_path ?? ''} ${e.http_status ?? ''}`.trim() : null;
  const meta = e.metadata && Object.keys(e.metadata).length > 0 ? e.metadata : null;
  return html`${diffs ? diffTable(diffs) : e.changes && Object.keys(e.changes).length > 0 ? html`<pre>${jsonText(e.changes)}</pre>` : null}
${http ? html`<p>HTTP: ${http}</p>` : null}
${e.error_message !== null ? html`<p>Error: ${e.error_type ?? ''} ${e.error_message}</p>` : null}
${meta ? html`<details><summary>metadata</summary><pre>${jsonText(meta)}</pre></details>` : null}
<details><summary>all fields</summary><pre>${jsonText(e)}</pre></details>`;
}

/**
 * A table of events, oldest first. `diffs` (per event id) shows an object's
 * field-level changes; without it (searches across objects) the recorded changes are shown as is.
 */
export function eventsTable(events: readonly HistoryEvent[], opts: { caption: string; diffs?: ReadonlyMap<string, FieldDiff[]>; showObject: boolean }): Markup {
  if (events.length === 0) return html`<p class="empty" id="no-events">No events found.</p>`;
  return html`<div class="events"><table id="events">
<caption>${opts.caption}</caption>
<thead><tr><th scope="col">time (UTC)</th>${opts.showObject ? html`<th scope="col">object</th>` : null}<th scope="col">action</th><th scope="col">actor</th><th scope="col">tenant</th><th scope="col">request</th><th scope="col">details</th></tr></thead>
<tbody>
${events.map(
  (e) => html`<tr data-event-id="${e.event_id}"><td><time datetime="${e.occurred_at}">${e.occurred_at}</time></td>${opts.showObject ? html`<td>${objectLink(e.object_type, e.object_id)}</td>` : null}<td>${e.action}</td><td>${actorLink(e.actor_id)}</td><td>${e.tenant_id}</td><td>${requestLink(e)}</td><td>${details(e, opts.diffs?.get(e.event_id))}</td></tr>
`,
)}</tbody></table></div>`;
}

export function stateView(s: ObjectState): Markup {
  if (!s.exists || s.state === null) {
    return html`<p id="state" class="empty">As of ${s.as_of}: ${s.version === 0 ? 'the object did not exist yet.' : `deleted (last event ${s.last_action ?? ''} at ${s.last_event_at ?? ''}).`}</p>`;
  }
  const fields = Object.keys(s.state).sort();
  return html`<table id="state"><caption>State as of ${s.as_of} (version ${s.version}, last ${s.last_action ?? ''} at ${s.last_event_at ?? ''})</caption>
<thead><tr><th scope="col">field</th><th scope="col">value</th></tr></thead>
<tbody>${fields.map((f) => html`<tr><th scope="row">${f}</th><td>${value(s.state![f])}</td></tr>`)}</tbody></table>`;
}
