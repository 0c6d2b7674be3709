export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface Progress {
  /** Called as each candidate file becomes readable. */
  update(done: number, total: number): void;
  /** Erases an unfinished progress line (before an error message, say). */
  clear(): void;
}

/**
 * "reading 12/40 files" on one rewritten line, on a terminal only (never in
 * pipes or logs), and only for queries that touch at least `minFiles` files.
 */
export function createProgress(stream: ProgressStream, minFiles = 8): Progress | undefined {
  if (!stream.isTTY) return undefined;
  let open = false;
  return {
    update(done, total) {
      if (total < minFiles) return;
      stream.write(`\r\x1b[Kreading ${done}/${total} files`);
      open = done < total;
      if (!open) stream.write('\n');
    },
    clear() {
      if (open) stream.write('\r\x1b[K');
      open = false;
    },
  };
}
