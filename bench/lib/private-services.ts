/**
 * Private copies of the infra/ services (Kafka, MinIO, versitygw, PostgreSQL, the registry)
 * on free ports, with their data, pid files and logs in a temp dir: a test or a benchmark
 * that stops, kills or restarts a server does it to its own, never to the shared ones other
 * test files are using. The infra/ scripts themselves start and stop them (the same
 * configuration as the shared services), pointed at the temp dir by AUDIT_INFRA_HOME; the
 * installed binaries and jars are linked from the project's .infra, not copied.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type PrivateService = 'kafka' | 's3' | 's3b' | 'postgres' | 'registry';

export class PrivateServiceError extends Error {
  constructor(
    readonly service: PrivateService,
    readonly action: 'up' | 'down',
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`private ${service}: infra/${action}.sh exited ${code}: ${output.slice(-2000)}`);
    this.name = 'PrivateServiceError';
  }
}

/** The project root, from this file in the sources (bench/lib) or the build (dist/bench/lib). */
function projectRoot(): string {
  for (const up of [['..', '..'], ['..', '..', '..']]) {
    const dir = join(__dirname, ...up);
    if (existsSync(join(dir, 'infra', 'up.sh'))) return dir;
  }
  throw new Error(`project root not found above ${__dirname}`);
}

/** `count` distinct free TCP ports on 127.0.0.1, all held until each is picked so they differ. */
export async function freeTcpPorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

export interface PrivateEndpoints {
  kafkaBrokers: string;
  s3Endpoint: string;
  s3bEndpoint: string;
  pgUrl: string;
  registryUrl: string;
}

export class PrivateServices {
  private readonly started = new Set<PrivateService>();

  private constructor(
    readonly home: string,
    readonly root: string,
    /** The variables that point infra/*.sh at this instance. */
    readonly infraVars: Record<string, string>,
    readonly endpoints: PrivateEndpoints,
  ) {}

  /** Lays out a private infra home (links to the installed binaries, empty data) on fresh ports. Starts nothing. */
  static async create(label: string, opts: { kafkaHeap?: string; registryStorage?: 'mem' | 'kafkasql' } = {}): Promise<PrivateServices> {
    const root = projectRoot();
    // Where infra/ installed the binaries: AUDIT_INFRA_HOME when a CI cache or several clones share one.
    const shared = process.env.AUDIT_INFRA_HOME || join(root, '.infra');
    const home = await mkdtemp(join(tmpdir(), `audit-private-${label}-`));
    // PostgreSQL runs as its own user (infra/services/postgres.sh) and must reach its data dir in here.
    await chmod(home, 0o755);
    await symlink(join(shared, 'bin'), join(home, 'bin'));
    const kafkaVersion = process.env.AUDIT_KAFKA_VERSION ?? '3.9.1';
    const kafkaHome = join(home, 'kafka', kafkaVersion);
    await mkdir(kafkaHome, { recursive: true });
    // libs linked, config/ written per instance by infra/services/kafka.sh; the stamp says "installed".
    await symlink(join(shared, 'kafka', kafkaVersion, 'libs'), join(kafkaHome, 'libs'));
    await copyFile(join(shared, 'kafka', kafkaVersion, '.installed'), join(kafkaHome, '.installed'));
    const registryVersion = process.env.AUDIT_REGISTRY_VERSION ?? '3.3.3';
    if (existsSync(join(shared, 'registry', registryVersion))) {
      await mkdir(join(home, 'registry'), { recursive: true });
      await symlink(join(shared, 'registry', registryVersion), join(home, 'registry', registryVersion));
    }
    if (existsSync(join(shared, 'mc'))) await symlink(join(shared, 'mc'), join(home, 'mc'));
    const [kafka, controller, s3, s3Console, s3b, pg, registry, registryMgmt] = await freeTcpPorts(8);
    const infraVars: Record<string, string> = {
      AUDIT_INFRA_HOME: home,
      AUDIT_KAFKA_PORT: String(kafka),
      AUDIT_KAFKA_CONTROLLER_PORT: String(controller),
      AUDIT_KAFKA_HEAP_OPTS: opts.kafkaHeap ?? '-Xms128m -Xmx512m',
      AUDIT_S3_PORT: String(s3),
      AUDIT_S3_CONSOLE_PORT: String(s3Console),
      AUDIT_S3B_PORT: String(s3b),
      AUDIT_PG_PORT: String(pg),
      AUDIT_REGISTRY_PORT: String(registry),
      AUDIT_REGISTRY_MGMT_PORT: String(registryMgmt),
      AUDIT_REGISTRY_STORAGE: opts.registryStorage ?? 'mem',
      AUDIT_REGISTRY_KAFKASQL_TOPIC: 'private-registry-journal',
    };
    return new PrivateServices(home, root, infraVars, {
      kafkaBrokers: `127.0.0.1:${kafka}`,
      s3Endpoint: `http://127.0.0.1:${s3}`,
      s3bEndpoint: `http://127.0.0.1:${s3b}`,
      pgUrl: `postgresql://postgres@127.0.0.1:${pg}/audit_test`,
      registryUrl: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
    });
  }

  /** The S3 endpoint of an infra service name ('s3' MinIO, 's3b' versitygw). */
  s3EndpointOf(service: 's3' | 's3b'): string {
    return service === 's3' ? this.endpoints.s3Endpoint : this.endpoints.s3bEndpoint;
  }

  async up(...services: PrivateService[]): Promise<void> {
    for (const s of services) {
      await this.infra('up', s);
      this.started.add(s);
    }
  }

  async down(...services: PrivateService[]): Promise<void> {
    for (const s of services) await this.infra('down', s);
  }

  /** The pid of a running service, from its pid file (PostgreSQL: the postmaster). */
  async pid(service: PrivateService): Promise<number | null> {
    const file =
      service === 'postgres'
        ? join(this.home, 'data', 'postgres', 'postmaster.pid')
        : service === 'registry'
          ? join(this.home, 'run', `registry-${this.infraVars.AUDIT_REGISTRY_PORT}.pid`)
          : join(this.home, 'run', `${service}.pid`);
    try {
      const pid = Number((await readFile(file, 'utf8')).split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : null;
    } catch {
      return null;
    }
  }

  /** Stops everything this instance started and removes its directory. */
  async close(): Promise<void> {
    const errors: Error[] = [];
    for (const s of [...this.started].reverse()) {
      try {
        await this.infra('down', s);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    this.started.clear();
    await rm(this.home, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `private services: ${errors.length} did not stop cleanly`);
  }

  private infra(action: 'up' | 'down', service: PrivateService): Promise<void> {
    const child = spawn('bash', [join(this.root, 'infra', `${action}.sh`), service], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.infraVars },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new PrivateServiceError(service, action, code, output))));
    });
  }
}
