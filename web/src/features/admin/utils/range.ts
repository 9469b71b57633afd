// UTC days as the API has them (`YYYY-MM-DD`), and the dashboard's range:
// both ends included, at most 366 days, as the gateway checks.

export const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

export interface Range {
  from: string;
  to: string;
}

/** Today's UTC day. */
export function utcToday(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/** This UTC month, `YYYY-MM`. */
export function utcMonth(today: string): string {
  return today.slice(0, 7);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Milliseconds of a UTC day, or NaN when `day` is not a real `YYYY-MM-DD`. */
export function dayMs(day: string): number {
  if (!DATE.test(day)) return NaN;
  const ms = Date.parse(`${day}T00:00:00Z`);
  // Date.parse rolls 2026-02-30 over to March: not a real day.
  return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== day ? NaN : ms;
}

/** `day` moved by `days` (negative: back). */
export function addDays(day: string, days: number): string {
  return new Date(dayMs(day) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Days from `from` to `to`, both included. */
export function spanDays(from: string, to: string): number {
  return Math.round((dayMs(to) - dayMs(from)) / DAY_MS) + 1;
}

/** The last `days` days up to `today`, today included. */
export function lastDays(days: number, today: string): Range {
  return { from: addDays(today, -(days - 1)), to: today };
}

/** What is wrong with a range, per field (none: it may be asked for). */
export function rangeErrors({ from, to }: Range): Partial<Record<keyof Range, string>> {
  const errors: Partial<Record<keyof Range, string>> = {};
  if (Number.isNaN(dayMs(from))) errors.from = "Enter a date.";
  if (Number.isNaN(dayMs(to))) errors.to = "Enter a date.";
  if (errors.from || errors.to) return errors;
  const span = spanDays(from, to);
  if (span < 1) errors.to = "The end must not be before the start.";
  else if (span > MAX_RANGE_DAYS) errors.to = `At most ${MAX_RANGE_DAYS} days.`;
  return errors;
}

/**
 * The `days` of the figures counted back from today (top users,
 * conversation length) that start with the range: from `from` to today,
 * 1..366.
 */
export function daysSince(from: string, today: string): number {
  return Math.min(Math.max(spanDays(from, today), 1), MAX_RANGE_DAYS);
}
