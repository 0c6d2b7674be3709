/**
 * @platformatic/kafka's supported Node lines (the consumer's default client, the
 * producer's in producer/client.ts). Apart from config/env.ts so that the
 * producer can ask without loading the services' configuration schema.
 */
export function nodeRunsPlatformatic(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 6) || (major === 22 && minor >= 22);
}
