/** What the pipeline needs from object storage: S3 (any S3-compatible server) or a local directory. */
export interface ObjectInfo {
  /** Key relative to the store's prefix. */
  key: string;
  size: number;
  /** Last modification, epoch ms (S3 LastModified, file mtime); absent when the store cannot tell. */
  lastModified?: number;
}

/** Why an object may not be deleted yet (S3 Object Lock). */
export interface LockStatus {
  /** Retention in force until this time (epoch ms), or null. */
  retainUntil: number | null;
  legalHold: boolean;
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
  /**
   * Deletes many objects in as few requests as the store allows (S3: DeleteObjects, up
   * to 1,000 keys a request); absent where the store has nothing better than one by one.
   */
  deleteMany?(keys: readonly string[]): Promise<void>;
  /** The object's URI for engines outside the project (`s3://bucket/prefix/key`, `file:///dir/key`). */
  uri?(key: string): string;
  /**
   * The Object Lock state of an object, where the store has Object Lock turned on;
   * absent (or resolving null) where it has none, so callers skip the extra request.
   */
  lockStatus?(key: string): Promise<LockStatus | null>;
  /**
   * Fails with a StorageError when the store cannot be reached or does not exist (its code
   * `NoSuchStore` or `NoSuchBucket` for the latter). A writer's check (`create`, the default)
   * makes a directory store's root; a reader's (`existing`) creates nothing, so a reader
   * pointed at the wrong place says so instead of leaving an empty store behind.
   */
  check(mode?: 'create' | 'existing'): Promise<void>;
  close(): void;
}
