/**
 * CI runs the time-sensitive tests a second time under Debian's `faketime` (libfaketime preloaded),
 * so a test that only passes this year fails today. Only the gateway and the test process may run
 * shifted: redis-server and Envoy hang at start under libfaketime, and in production their clocks
 * are other machines' clocks anyway. This strips the preload from a child's environment.
 */

/** `env` without libfaketime's variables (LD_PRELOAD entries naming libfaketime, FAKETIME*). */
export function realClockEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('FAKETIME') || name === 'DONT_FAKE_MONOTONIC') continue;
    if (name === 'LD_PRELOAD' && value !== undefined) {
      const kept = value.split(/[: ]/).filter((lib) => lib !== '' && !lib.includes('libfaketime'));
      if (kept.length > 0) out[name] = kept.join(':');
      continue;
    }
    out[name] = value;
  }
  return out;
}
