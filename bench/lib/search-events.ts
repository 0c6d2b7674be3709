/**
 * The benchmark event stream with actors and tenants that cluster like real
 * ones (EventGenerator's objects, actions and payloads, re-attributed):
 *
 * - tenants are Zipf-distributed (s = 1.1 over 500 tenants): each object
 *   belongs to one tenant, drawn with those weights, so the biggest tenant owns
 *   ~15% of the objects and the smallest a handful;
 * - every user belongs to one tenant (users per tenant in proportion to its
 *   objects, at least one) and works on a few days of the month (1 to 6), on
 *   its own tenant's objects; an event on an object is done by one of the
 *   object tenant's users active that day (else the tenant's first user);
 *   service actors (15% of events, as before) span tenants;
 * - one "power" user (`usr_power`) of a mid-size tenant has ~1,700 events
 *   spread over the month's working days, and a few rare users
 *   (`usr_rare_N`) have 3 events each on a single day.
 */
import type { AuditRecord } from '../../schemas';
import { EventGenerator, type EventGenOptions } from './events';
import { Prng } from './prng';

export const POWER_ACTOR = 'usr_power';
export const RARE_ACTORS = ['usr_rare_1', 'usr_rare_2', 'usr_rare_3'];
export const POWER_EVENTS = 1700;
const TENANTS = 500;
const ZIPF_S = 1.1;
const USERS = 5000;

interface User {
  id: string;
  tenant: string;
  days: Set<number>;
}

export class ClusteredEventGenerator {
  private readonly base: EventGenerator;
  /** tenant of each object (by `type:id`). */
  private readonly objectTenant = new Map<string, string>();
  private readonly usersByTenant = new Map<string, User[]>();
  /** Users of each tenant active on each day. */
  private readonly activeByTenant = new Map<string, User[][]>();
  /** Event index -> actor/tenant imposed (power and rare users). */
  private readonly imposed = new Map<number, { actor: string; tenant: string }>();
  /** The tenants by size, biggest first. */
  readonly tenantsBySize: string[];
  readonly powerTenant: string;

  constructor(private readonly opts: EventGenOptions) {
    this.base = new EventGenerator(opts);
    const r = new Prng(opts.seed ^ 0x2545f491);
    const weights = Array.from({ length: TENANTS }, (_, k) => 1 / Math.pow(k + 1, ZIPF_S));
    const total = weights.reduce((a, b) => a + b, 0);
    const cumulative: number[] = [];
    let acc = 0;
    for (const w of weights) cumulative.push((acc += w / total));
    const tenantName = (k: number) => `tn_${String(k).padStart(3, '0')}`;
    const draw = () => {
      const x = r.next();
      let lo = 0;
      let hi = TENANTS - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const objectsPerTenant = new Array<number>(TENANTS).fill(0);
    for (const o of this.base.objects) {
      const k = draw();
      objectsPerTenant[k]!++;
      this.objectTenant.set(`${o.type}:${o.id}`, tenantName(k));
    }
    this.tenantsBySize = objectsPerTenant.map((n, k) => [n, k] as const).sort((a, b) => b[0] - a[0]).map(([, k]) => tenantName(k));
    const objects = this.base.objects.length;
    for (let k = 0; k < TENANTS; k++) {
      const n = Math.max(1, Math.round((USERS * objectsPerTenant[k]!) / objects));
      const users: User[] = [];
      for (let u = 0; u < n; u++) {
        const days = new Set<number>();
        const active = 1 + r.int(6);
        while (days.size < Math.min(active, opts.days)) days.add(r.int(opts.days));
        users.push({ id: `usr_${k}_${u}_${r.base62(6)}`, tenant: tenantName(k), days });
      }
      this.usersByTenant.set(tenantName(k), users);
      this.activeByTenant.set(tenantName(k), Array.from({ length: opts.days }, (_, d) => users.filter((u) => u.days.has(d))));
    }
    // The power user's tenant: a mid-size one (rank 20).
    this.powerTenant = this.tenantsBySize[Math.min(19, TENANTS - 1)]!;
    const perDay = opts.events / opts.days;
    const workdays = Array.from({ length: opts.days }, (_, d) => d).filter((d) => {
      const wd = new Date(opts.start + d * 86_400_000).getUTCDay();
      return wd !== 0 && wd !== 6;
    });
    const powerEvents = Math.min(POWER_EVENTS, Math.floor(opts.events / 4));
    while (this.imposed.size < powerEvents) {
      const d = workdays[r.int(workdays.length)]!;
      this.imposed.set(Math.floor(d * perDay + r.int(Math.max(1, Math.floor(perDay)))), { actor: POWER_ACTOR, tenant: this.powerTenant });
    }
    for (const [j, actor] of RARE_ACTORS.entries()) {
      const d = r.int(opts.days);
      const tenant = this.tenantsBySize[50 + j * 100] ?? this.tenantsBySize[0]!;
      let placed = 0;
      while (placed < 3) {
        const i = Math.floor(d * perDay + r.int(Math.max(1, Math.floor(perDay))));
        if (this.imposed.has(i)) continue;
        this.imposed.set(i, { actor, tenant });
        placed++;
      }
    }
  }

  *events(): Generator<AuditRecord> {
    const { events, days } = this.opts;
    const pick = new Prng(this.opts.seed ^ 0x68e31da4);
    let i = 0;
    for (const e of this.base.events()) {
      const day = Math.min(days - 1, Math.floor((i / events) * days));
      const tenant = this.objectTenant.get(`${e.object_type}:${e.object_id}`)!;
      const imposed = this.imposed.get(i);
      i++;
      if (imposed) {
        yield { ...e, actor_id: imposed.actor, actor_type: 'user', tenant_id: imposed.tenant };
        continue;
      }
      if (e.actor_type !== 'user') {
        yield { ...e, tenant_id: tenant };
        continue;
      }
      const users = this.usersByTenant.get(tenant)!;
      const active = this.activeByTenant.get(tenant)![day]!;
      const user = active.length > 0 ? active[pick.int(active.length)]! : users[0]!;
      yield { ...e, actor_id: user.id, tenant_id: tenant };
    }
  }
}
