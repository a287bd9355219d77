/**
 * Calendar months in a time zone, for tokensPerMonth budgets. A month is identified by `YYYY-MM` in
 * the scope's zone; its bounds are computed with Intl and cached per zone, so the hot path does one
 * comparison per request.
 */

export interface MonthSpan {
  /** `YYYY-MM` in the zone. */
  readonly id: string;
  /** Epoch ms of the first instant of the month in the zone. */
  readonly startMs: number;
  /** Epoch ms of the first instant of the next month. */
  readonly endMs: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const cache = new Map<string, MonthSpan>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Wall-clock fields of `ms` in `zone`. */
function fields(ms: number, zone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const out = { y: 0, mo: 0, d: 0, h: 0, mi: 0, s: 0 };
  for (const p of formatter(zone).formatToParts(ms)) {
    const v = Number(p.value);
    if (p.type === 'year') out.y = v;
    else if (p.type === 'month') out.mo = v;
    else if (p.type === 'day') out.d = v;
    else if (p.type === 'hour') out.h = v;
    else if (p.type === 'minute') out.mi = v;
    else if (p.type === 'second') out.s = v;
  }
  return out;
}

/** Offset (ms) of `zone` from UTC at instant `ms`. */
function offsetAt(ms: number, zone: string): number {
  const f = fields(ms, zone);
  const asUtc = Date.UTC(f.y, f.mo - 1, f.d, f.h, f.mi, f.s);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant when wall clock in `zone` reads `y-mo-01T00:00:00` (or day `d`). */
function monthStart(y: number, mo: number, zone: string, d = 1): number {
  const guess = Date.UTC(y, mo - 1, d);
  let t = guess - offsetAt(guess, zone);
  t = guess - offsetAt(t, zone); // second pass settles DST changes near the boundary
  return t;
}

/** The calendar month containing `nowMs` in `zone` (an IANA name checked when config was built). */
export function monthSpan(nowMs: number, zone: string): MonthSpan {
  const hit = cache.get(zone);
  if (hit && nowMs >= hit.startMs && nowMs < hit.endMs) return hit;
  const f = fields(nowMs, zone);
  const startMs = monthStart(f.y, f.mo, zone);
  const endMs = f.mo === 12 ? monthStart(f.y + 1, 1, zone) : monthStart(f.y, f.mo + 1, zone);
  const span = { id: `${f.y}-${String(f.mo).padStart(2, '0')}`, startMs, endMs };
  if (cache.size > 1000) cache.clear();
  cache.set(zone, span);
  return span;
}

const dayCache = new Map<string, MonthSpan>();

/** The calendar day containing `nowMs` in `zone`; `id` is `YYYY-MM-DD` (costPerDay budgets). */
export function daySpan(nowMs: number, zone: string): MonthSpan {
  const hit = dayCache.get(zone);
  if (hit && nowMs >= hit.startMs && nowMs < hit.endMs) return hit;
  const f = fields(nowMs, zone);
  const startMs = monthStart(f.y, f.mo, zone, f.d);
  // Date.UTC rolls day 32 etc. over into the next month, so d + 1 is always the next day.
  const next = new Date(Date.UTC(f.y, f.mo - 1, f.d + 1));
  const endMs = monthStart(next.getUTCFullYear(), next.getUTCMonth() + 1, zone, next.getUTCDate());
  const span = { id: `${f.y}-${String(f.mo).padStart(2, '0')}-${String(f.d).padStart(2, '0')}`, startMs, endMs };
  if (dayCache.size > 1000) dayCache.clear();
  dayCache.set(zone, span);
  return span;
}
