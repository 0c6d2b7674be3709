/**
 * How the consumer fetches from Kafka. Fetches are bounded so that what is
 * fetched plus what is buffered stays within the memory budget; the benchmark's
 * bare-kafkajs baseline uses the same values so that the two compare fairly.
 */
export const FETCH_SETTINGS = {
  maxWaitTimeInMs: 250,
  maxBytesPerPartition: 4 * 1024 * 1024,
  maxBytes: 12 * 1024 * 1024,
} as const;
