/**
 * Private Kafka / S3 servers for a test file that stops or restarts one (bench/lib/private-services.ts):
 * the file runs in the parallel phase with the rest, which keep the shared servers.
 */
import { PrivateServices, type PrivateService } from '../../bench/lib/private-services';

export { PrivateServices, type PrivateService };

/**
 * Starts `services` privately before the file's tests and stops them after. `get()` is valid
 * from the file's first test on.
 */
export function usePrivateServices(label: string, services: PrivateService[]): { get(): PrivateServices } {
  let instance: PrivateServices | null = null;
  beforeAll(async () => {
    instance = await PrivateServices.create(label);
    await Promise.all(services.map((s) => instance!.up(s)));
  }, 300_000);
  afterAll(async () => {
    await instance?.close();
  }, 180_000);
  return {
    get() {
      if (!instance) throw new Error('private services not started (used outside a test?)');
      return instance;
    },
  };
}
