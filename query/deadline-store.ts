import { type ObjectInfo, type ObjectStore, StorageError } from '../storage';

export interface Deadlines {
  /** First contact (bucket check): an unreachable or silent endpoint fails this fast. */
  checkMs: number;
  /** A LIST page or a small GET. */
  requestMs: number;
  /** Extra time per MiB of a ranged GET. */
  perMiBMs: number;
}

export const DEFAULT_DEADLINES: Deadlines = { checkMs: 5_000, requestMs: 20_000, perMiBMs: 2_000 };

/**
 * Read-side wrapper of an ObjectStore that bounds how long each request may
 * take. The SDK gives up quickly on refused connections, but a host that accepts
 * and then stays silent (firewall, hung proxy) would otherwise hang the CLI for minutes.
 * (The request itself is abandoned, not aborted; closing the store ends it.)
 */
export class DeadlineStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly deadlines: Deadlines = DEFAULT_DEADLINES,
  ) {
    this.description = inner.description;
  }

  private within<T>(op: string, where: string, ms: number, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new StorageError(op, where, new Error(`no answer within ${Math.round(ms / 1000)} s`), 'Timeout')), ms);
    });
    work.catch(() => undefined); // a late failure after the deadline is not "unhandled"
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  check(mode?: 'create' | 'existing'): Promise<void> {
    return this.within('open', this.inner.description, this.deadlines.checkMs, this.inner.check(mode));
  }

  get(key: string): Promise<Buffer | null> {
    return this.within('get', `${this.description}${key}`, this.deadlines.requestMs, this.inner.get(key));
  }

  getRange(key: string, start: number, end: number): Promise<Buffer> {
    const ms = this.deadlines.requestMs + Math.ceil((end - start) / 1048576) * this.deadlines.perMiBMs;
    return this.within('ranged get', `${this.description}${key}`, ms, this.inner.getRange(key, start, end));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const it = this.inner.list(prefix)[Symbol.asyncIterator]();
    for (;;) {
      const next = await this.within('list', `${this.description}${prefix}`, this.deadlines.requestMs, it.next());
      if (next.done) return;
      yield next.value;
    }
  }

  listPrefixes(prefix: string): Promise<string[]> {
    return this.within('list', `${this.description}${prefix}`, this.deadlines.requestMs, this.inner.listPrefixes(prefix));
  }

  download(key: string, localPath: string): Promise<void> {
    return this.inner.download(key, localPath);
  }

  putFile(key: string, localPath: string): Promise<void> {
    return this.inner.putFile(key, localPath);
  }

  put(key: string, body: Buffer | string): Promise<void> {
    return this.inner.put(key, body);
  }

  putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    return this.inner.putIfAbsent(key, body);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  close(): void {
    this.inner.close();
  }
}
