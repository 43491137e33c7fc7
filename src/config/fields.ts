/**
 * zod builders for config values: each takes its default and its message, so
 * that schema.ts reads as a table of keys. Every message names what is expected,
 * never the value found (it may be a password).
 */
import { z } from 'zod';

/** Largest delay Node's timers accept; larger values silently become 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/** An empty YAML value (`key:` with nothing after it) means "use the default". */
export const emptyToUndefined = (value: unknown): unknown => (value === null ? undefined : value);

const DECIMAL = /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;

/**
 * Numeric fields accept a decimal string too. This is how `port: ${PORT:-9999}`
 * validates: substitution yields the string "9999" and the numeric field reads it.
 * (A quoted `"9999"` is accepted for the same reason; no harm in that.)
 * String fields never coerce, so a password of digits from an env var stays a string.
 */
export const numberFromText = (value: unknown): unknown => {
  if (value === null) return undefined;
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return Number(value.trim());
  return value;
};

export function intField(min: number, max: number, unit = '') {
  const message =
    max >= Number.MAX_SAFE_INTEGER
      ? `expected an integer >= ${min}${unit}`
      : `expected an integer from ${min} to ${max}${unit}`;
  return z
    .number({ error: message })
    .int({ error: message })
    .min(min, { error: message })
    .max(max, { error: message });
}

export function int(min: number, max: number, def: number, unit = '') {
  return z.preprocess(numberFromText, intField(min, max, unit).default(def));
}

/** A duration in milliseconds, at most what a Node timer accepts. */
export function ms(min: number, def: number) {
  return int(min, MAX_TIMER_MS, def, ' (milliseconds)');
}

export const requiredPort = z.preprocess(numberFromText, intField(1, 65535));

export const nonEmptyString = (what = 'a non-empty string') =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

export function str(def: string) {
  return z.preprocess(emptyToUndefined, nonEmptyString().default(def));
}

/** A non-empty string, or absent (undefined) when left out or empty. */
export function optionalStr(what: string) {
  return z.preprocess(emptyToUndefined, nonEmptyString(what).optional());
}

/** Any string ('' allowed, e.g. a password for a trusting backend), or absent. */
export const optionalAnyString = z.preprocess(emptyToUndefined, z.string({ error: 'expected a string' }).optional());

export function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  return z.preprocess(
    emptyToUndefined,
    z.enum(values, { error: `expected one of: ${values.join(', ')}` }).default(def as never),
  );
}

export function bool(def: boolean) {
  return z.preprocess(
    (v: unknown) => (v === null ? undefined : v === 'true' ? true : v === 'false' ? false : v),
    z.boolean({ error: 'expected true or false' }).default(def),
  );
}

export function list<T extends z.ZodType>(item: T) {
  return z.preprocess(
    emptyToUndefined,
    z.array(item, { error: 'expected a list' }).default([] as never),
  );
}

/** A name, a list of names, or 'all' (the default). */
export const nameList = z.preprocess(
  (v: unknown) => (v === null ? undefined : typeof v === 'string' ? [v] : v),
  z.array(nonEmptyString('a name'), { error: "expected a name, a list of names, or 'all'" }).min(1).default(['all']),
);

/** A section of keys; unknown keys are rejected; absent or empty = all defaults. */
export function section<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.preprocess(
    emptyToUndefined,
    z.strictObject(shape, { error: 'expected a mapping of keys' }).prefault({} as never),
  );
}
