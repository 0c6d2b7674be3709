/** What the pipeline needs from object storage: S3 (any S3-compatible server) or a local directory. */
export interface ObjectInfo {
  /** Key relative to the store's prefix. */
  key: string;
  size: number;
}

export interface ObjectStore {
  /** Human-readable location, for messages. */
  readonly description: string;
  /** Uploads a local file; resolves once the object is durably stored. */
  putFile(key: string, localPath: string): Promise<void>;
  put(key: string, body: Buffer | string): Promise<void>;
  /** Creates the object only if no object has that key; false when one already existed. */
  putIfAbsent(key: string, body: Buffer | string): Promise<boolean>;
  /** The whole object, or null when there is none. */
  get(key: string): Promise<Buffer | null>;
  /** Bytes [start, end) of an object. */
  getRange(key: string, start: number, end: number): Promise<Buffer>;
  /** Writes the object to a local file. */
  download(key: string, localPath: string): Promise<void>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Lists the "directories" directly under a prefix (keys up to the next '/'). */
  listPrefixes(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Fails with a StorageError when the store cannot be reached or does not exist. */
  check(): Promise<void>;
  close(): void;
}
