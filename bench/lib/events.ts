/**
 * A deterministic stream of realistic audit events, in Kafka arrival order:
 * ~100k objects of six types, thousands of actors, HTTP context for user
 * actions, field-level `changes` JSON on updates, an `after` snapshot on
 * creation, a `before` snapshot on deletion, and a small share of late events
 * (which the consumer stores under their own, older, `dt=`).
 */
import { CURRENT_SCHEMA_ID, type AuditRecord, type FieldChange } from '../../schemas';
import { Prng } from './prng';

export type BenchProfile = 'typical' | 'full';

export interface EventGenOptions {
  events: number;
  days: number;
  objects: number;
  /** First day, epoch ms (UTC midnight). */
  start: number;
  seed: number;
  /** Share of events that arrive late (occurred up to 3 days before they are produced). */
  lateShare: number;
  /** `full` adds a request id and a trace id to every HTTP event (random, so incompressible). */
  profile: BenchProfile;
}

export interface BenchObject {
  type: string;
  id: string;
  tenant: string;
  service: string;
  exists: boolean;
  state: Record<string, unknown>;
}

interface TypeSpec {
  type: string;
  weight: number;
  service: string;
  id: (r: Prng, n: number) => string;
  fields: Record<string, (r: Prng) => unknown>;
}

const NOTES = ['customer asked for a copy', 'corrected address', 'discount applied', 'late fee waived', 'split delivery', 'duplicate removed', 'reviewed by finance', 'needs approval'];
const UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'okhttp/4.12.0',
  'python-requests/2.31.0',
];
const date = (r: Prng) => new Date(Date.UTC(2026, r.int(12), 1 + r.int(28))).toISOString().slice(0, 10);

const TYPES: TypeSpec[] = [
  {
    type: 'invoice', weight: 30, service: 'billing-api',
    id: (_r, n) => `INV-${String(100000 + n)}`,
    fields: {
      status: (r) => r.pick(['draft', 'sent', 'paid', 'overdue', 'void']),
      amount: (r) => r.int(500_000) / 100,
      currency: (r) => r.pick(['EUR', 'USD', 'GBP']),
      due_date: date,
      note: (r) => r.pick(NOTES),
    },
  },
  {
    type: 'order', weight: 30, service: 'orders-api',
    id: (_r, n) => String(7_000_000 + n * 3),
    fields: {
      status: (r) => r.pick(['pending', 'paid', 'packed', 'shipped', 'delivered', 'returned']),
      items: (r) => 1 + r.int(12),
      shipping: (r) => r.pick(['standard', 'express', 'pickup']),
      total: (r) => r.int(90_000) / 100,
    },
  },
  {
    type: 'customer', weight: 15, service: 'crm',
    id: (r) => `cus_${r.base62(14)}`,
    fields: {
      email: (r) => `user${r.int(1_000_000)}@example.com`,
      plan: (r) => r.pick(['free', 'starter', 'pro', 'enterprise']),
      phone: (r) => `+49 30 ${1000000 + r.int(8999999)}`,
      country: (r) => r.pick(['DE', 'FR', 'NL', 'US', 'GB', 'ES']),
    },
  },
  {
    type: 'user', weight: 10, service: 'auth',
    id: (_r, n) => String(10_000 + n),
    fields: {
      role: (r) => r.pick(['viewer', 'editor', 'admin']),
      locale: (r) => r.pick(['de-DE', 'en-US', 'fr-FR']),
      mfa: (r) => r.chance(0.5),
    },
  },
  {
    type: 'payment', weight: 10, service: 'billing-api',
    id: (r) => `pay_${r.base62(14)}`,
    fields: {
      status: (r) => r.pick(['authorized', 'captured', 'refunded', 'failed']),
      amount: (r) => r.int(500_000) / 100,
      method: (r) => r.pick(['card', 'sepa', 'paypal']),
    },
  },
  {
    type: 'document', weight: 5, service: 'docs',
    id: (r) => r.uuid(),
    fields: {
      title: (r) => `${r.pick(['Contract', 'Offer', 'Report', 'Minutes'])} ${r.int(1000)}`,
      status: (r) => r.pick(['draft', 'review', 'published', 'archived']),
      version: (r) => 1 + r.int(20),
    },
  },
];

interface Actor {
  id: string;
  type: 'user' | 'service';
  ip: string | null;
  ua: string | null;
}

export class EventGenerator {
  readonly objects: BenchObject[] = [];
  private readonly actors: Actor[] = [];
  private readonly rng: Prng;

  constructor(private readonly opts: EventGenOptions) {
    this.rng = new Prng(opts.seed);
    const r = new Prng(opts.seed ^ 0x5bd1e995);
    const totalWeight = TYPES.reduce((s, t) => s + t.weight, 0);
    let n = 0;
    for (const spec of TYPES) {
      const count = Math.round((opts.objects * spec.weight) / totalWeight);
      for (let i = 0; i < count; i++) {
        this.objects.push({ type: spec.type, id: spec.id(r, n++), tenant: `t_${r.int(500)}`, service: spec.service, exists: false, state: {} });
      }
    }
    for (let i = 0; i < 5000; i++) {
      this.actors.push({ id: `usr_${r.base62(10)}`, type: 'user', ip: `10.${r.int(256)}.${r.int(256)}.${1 + r.int(254)}`, ua: r.pick(UAS) });
    }
    for (const s of ['billing-worker', 'orders-worker', 'crm-sync', 'scheduler', 'importer']) this.actors.push({ id: `svc-${s}`, type: 'service', ip: null, ua: null });
  }

  private spec(type: string): TypeSpec {
    return TYPES.find((t) => t.type === type)!;
  }

  /** Events in arrival order. */
  *events(): Generator<AuditRecord> {
    const { events, days, start, lateShare, profile } = this.opts;
    const r = this.rng;
    const spanUs = days * 86_400_000_000;
    const startUs = start * 1000;
    for (let i = 0; i < events; i++) {
      const o = this.objects[r.int(this.objects.length)]!;
      const spec = this.spec(o.type);
      let at = startUs + Math.floor((i / events) * spanUs) + r.int(1_000_000);
      if (r.chance(lateShare)) at = Math.max(startUs, at - 3_600_000_000 - r.int(3 * 86_400_000_000));

      let action: string;
      const changes: Record<string, FieldChange> = {};
      let before: string | null = null;
      let after: string | null = null;
      if (!o.exists) {
        action = 'create';
        for (const [f, gen] of Object.entries(spec.fields)) o.state[f] = gen(r);
        o.exists = true;
        after = JSON.stringify(o.state);
      } else {
        const x = r.next();
        if (x < 0.6) {
          action = 'update';
          const fields = Object.keys(spec.fields);
          const k = 1 + r.int(Math.min(3, fields.length));
          for (let j = 0; j < k; j++) {
            const f = fields[r.int(fields.length)]!;
            const next = spec.fields[f]!(r);
            changes[f] = { old: JSON.stringify(o.state[f] ?? null), new: JSON.stringify(next) };
            o.state[f] = next;
          }
        } else if (x < 0.88) action = 'read';
        else if (x < 0.94) action = 'process_step';
        else if (x < 0.996) action = 'custom';
        else {
          action = 'delete';
          before = JSON.stringify(o.state);
          o.exists = false;
          o.state = {};
        }
      }

      const actor = r.chance(0.85) ? this.actors[r.int(5000)]! : this.actors[5000 + r.int(5)]!;
      const http = actor.type === 'user';
      const method = { create: 'POST', update: 'PATCH', read: 'GET', delete: 'DELETE' }[action] ?? 'POST';
      const status = http ? (r.chance(0.02) ? r.pick([400, 403, 404, 409, 500]) : action === 'create' ? 201 : action === 'delete' ? 204 : 200) : null;
      yield {
        event_id: r.uuid(),
        occurred_at: at,
        object_type: o.type,
        object_id: o.id,
        action,
        actor_id: actor.id,
        actor_type: actor.type,
        tenant_id: o.tenant,
        request_id: http && profile === 'full' ? r.uuid() : null,
        trace_id: http && profile === 'full' ? r.hex(32) : null,
        ip: actor.ip,
        user_agent: actor.ua,
        http_method: http ? method : null,
        http_path: http ? `/api/${o.type}s/${encodeURIComponent(o.id)}${action === 'process_step' ? '/steps' : ''}` : null,
        http_status: status,
        changes,
        before,
        after,
        metadata: r.chance(0.08) ? { reason: r.pick(NOTES), ticket: `T-${r.int(100_000)}` } : {},
        source_service: o.service,
        schema_version: CURRENT_SCHEMA_ID,
        duration_ms: http ? 3 + r.int(800) : null,
        error_type: status !== null && status >= 500 ? 'UpstreamTimeout' : null,
        error_message: status !== null && status >= 500 ? 'upstream did not answer within 5000 ms' : null,
        error_stack: null,
      };
    }
  }
}
