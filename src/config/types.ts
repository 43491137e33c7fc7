/**
 * The types the rest of the proxy reads, derived from the zod schema (never
 * written by hand a second time): Config is what `validateConfig` returns,
 * deeply readonly because the validated config is frozen.
 */
import type { z } from 'zod';
import type { AUTH_METHODS, HBA_METHODS, LOAD_BALANCE_MODES, LOG_LEVELS } from './schema.js';
import type { configSchema } from './normalise.js';

/** Readonly all the way down (objects and arrays), as deepFreeze leaves it. */
export type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

type DeepPartial<T> = T extends readonly (infer U)[]
  ? readonly DeepPartial<U>[]
  : T extends object
    ? { -readonly [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** The validated, frozen configuration. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

/** What may be written, loosely typed (every key optional); validation decides the rest. */
export type ConfigInput = DeepPartial<Config>;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type AuthMethod = (typeof AUTH_METHODS)[number];
export type HbaMethod = (typeof HBA_METHODS)[number];
export type LoadBalanceMode = (typeof LOAD_BALANCE_MODES)[number];

export type ListenConfig = Config['listen'];
export type TlsConfig = Config['tls'];
export type BackendTlsConfig = Config['backend_tls'];
export type BackendConfig = Config['backends'][number];
export type AuthConfig = Config['auth'];
export type UserConfig = AuthConfig['users'][number];
export type HbaRule = AuthConfig['hba'][number];
export type RoutingConfig = Config['routing'];
export type RedirectRule = RoutingConfig['redirect'][number];
export type PoolConfig = Config['pool'];
export type LimitsConfig = Config['limits'];
export type FailoverConfig = Config['failover'];
export type HealthCheckConfig = Config['health_check'];
export type LogConfig = Config['log'];
export type AdminConfig = Config['admin'];
export type MetricsConfig = Config['metrics'];
export type ShutdownConfig = Config['shutdown'];
