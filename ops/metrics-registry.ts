import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A service's own Prometheus registry, with the process metrics under its
 * prefix. Each service gets a fresh one rather than prom-client's global one:
 * tests run several services in one process, and their metrics must not mix.
 */
export function createServiceRegistry(prefix: `audit_${string}_`): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
