import { type DynamicModule, Module, type ModuleMetadata, type Provider } from '@nestjs/common';
import { APP_INTERCEPTOR, Reflector } from '@nestjs/core';
import { AuditClient, type AuditClientOptions } from '../client';
import type { AuditRecorder } from '../http/emit';
import { AuditInterceptor, type AuditInterceptorOptions } from './interceptor';
import { AUDIT_CLIENT, AUDIT_MODULE_OPTIONS } from './tokens';

export interface AuditModuleOptions {
  /**
   * The client to provide. An `AuditClient` (or any recorder) given here is the
   * app's: it is not closed by the module. Default: a new `AuditClient` made with
   * `clientOptions`, closed (flushed) when the app shuts down.
   */
  client?: AuditRecorder;
  /** Options of the client the module makes (default: the AUDIT_* environment, see config/env.ts). */
  clientOptions?: AuditClientOptions;
  /** Options of the request interceptor (actor, include/exclude, capture, ...). */
  http?: AuditInterceptorOptions;
  /** Register the interceptor for every route (APP_INTERCEPTOR; default true). With false, use `@UseInterceptors(AuditInterceptor)` where wanted. */
  globalInterceptor?: boolean;
}

export interface AuditModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Tokens whose values `useFactory` receives. */
  inject?: NonNullable<Extract<Provider, { useFactory: unknown }>['inject']>;
  useFactory: (...args: never[]) => AuditModuleOptions | Promise<AuditModuleOptions>;
  /** Register the interceptor for every route (default true); known before the factory runs. */
  globalInterceptor?: boolean;
}

/** The provided client and whether the module owns it (and so closes it at shutdown). */
class AuditClientHandle {
  constructor(
    readonly client: AuditRecorder,
    private readonly owned: AuditClient | null,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.owned?.close();
  }
}

function providers(options: Provider, globalInterceptor: boolean): Provider[] {
  const list: Provider[] = [
    options,
    {
      provide: AuditClientHandle,
      useFactory: (o: AuditModuleOptions) => {
        if (o.client) return new AuditClientHandle(o.client, null);
        const client = new AuditClient(o.clientOptions);
        return new AuditClientHandle(client, client);
      },
      inject: [AUDIT_MODULE_OPTIONS],
    },
    { provide: AUDIT_CLIENT, useFactory: (h: AuditClientHandle) => h.client, inject: [AuditClientHandle] },
    { provide: AuditClient, useExisting: AUDIT_CLIENT },
    {
      provide: AuditInterceptor,
      useFactory: (client: AuditRecorder, reflector: Reflector, o: AuditModuleOptions) => new AuditInterceptor(client, reflector, o.http),
      inject: [AUDIT_CLIENT, Reflector, AUDIT_MODULE_OPTIONS],
    },
  ];
  if (globalInterceptor) list.push({ provide: APP_INTERCEPTOR, useExisting: AuditInterceptor });
  return list;
}

/**
 * The audit client as an injectable provider (`AUDIT_CLIENT`, or the
 * `AuditClient` class as token), and the request interceptor (`AuditInterceptor`)
 * registered for every route. Global: import it once, in the root module.
 *
 * ```ts
 * @Module({ imports: [AuditModule.forRoot({ clientOptions: { sourceService: 'billing' }, http: { actor: (req) => req.user?.id ?? null } })] })
 * export class AppModule {}
 * ```
 */
export class AuditModule {
  static forRoot(options: AuditModuleOptions = {}): DynamicModule {
    return {
      module: AuditModule,
      global: true,
      providers: providers({ provide: AUDIT_MODULE_OPTIONS, useValue: options }, options.globalInterceptor !== false),
      exports: [AUDIT_CLIENT, AuditClient, AuditInterceptor],
    };
  }

  static forRootAsync(options: AuditModuleAsyncOptions): DynamicModule {
    return {
      module: AuditModule,
      global: true,
      imports: options.imports ?? [],
      providers: providers({ provide: AUDIT_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }, options.globalInterceptor !== false),
      exports: [AUDIT_CLIENT, AuditClient, AuditInterceptor],
    };
  }
}
Module({})(AuditModule);
