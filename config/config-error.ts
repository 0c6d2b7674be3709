/**
 * A configuration found wrong: the bins print it in one line and exit 2
 * (config/bin.ts). Its own module so that code an app loads (the producer's
 * registry settings) can throw it without loading the services' schema.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
