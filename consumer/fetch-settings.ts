/**
 * How the consumer fetches from Kafka. Fetches are bounded so that what is
 * fetched plus what is buffered stays within the memory budget; the benchmark's
 * bare-kafkajs baseline uses the same values so that the two compare fairly.
 */
export const FETCH_SETTINGS = {
  maxWaitTimeInMs: 250,
  // Smaller fetches measured faster than 4/12 MB (1M events: ~10 s against ~11 s,
  // less CPU): kafkajs's decoded batches are shorter-lived garbage.
  maxBytesPerPartition: 2 * 1024 * 1024,
  maxBytes: 6 * 1024 * 1024,
} as const;

/**
 * The same bounds for @platformatic/kafka (consumer/kafka/platformatic-source.ts), with
 * 1 MiB per fetch: its response buffer re-walks its chunks, so large fetches cost it more
 * than they save (measured ~6x slower with its 50 MiB default; bench/README.md).
 */
export const PLATFORMATIC_FETCH_SETTINGS = {
  maxWaitTime: FETCH_SETTINGS.maxWaitTimeInMs,
  minBytes: 1,
  maxBytes: 1024 * 1024,
  maxBytesPerPartition: 1024 * 1024,
} as const;
