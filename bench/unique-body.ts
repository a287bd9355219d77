/**
 * Request bodies that differ per request. Real prompts differ from request to request, so the bench
 * must not let anything keyed by prompt text (the token-count cache) serve every request from one
 * entry. A body containing UNIQUE_MARK gets a fresh number there for each request.
 */
export const UNIQUE_MARK = '{{n}}';

/**
 * A starting number above any this machine used in the last ~11 days of runs (milliseconds x 1000:
 * a run sends far fewer than 1,000 requests per millisecond). Small enough for wrk's Lua to print
 * it exactly (below 1e14).
 */
export function uniqueBase(): number {
  return (Date.now() % 1_000_000_000) * 1000;
}

/** The body of request `i`; the same Buffer every time when the body has no mark. */
export function bodyMaker(body: string): (i: number) => Buffer {
  const at = body.indexOf(UNIQUE_MARK);
  if (at < 0) {
    const fixed = Buffer.from(body);
    return () => fixed;
  }
  const prefix = body.slice(0, at);
  const suffix = body.slice(at + UNIQUE_MARK.length);
  const base = uniqueBase();
  return (i) => Buffer.from(prefix + String(base + i) + suffix);
}
