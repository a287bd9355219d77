/**
 * Open-loop HTTP load generator, run as its own process so its CPU is measured apart from the
 * gateway's. Two modes:
 * - `rate`: sends at a fixed rate whatever the latency (no coordinated omission: latency counts from
 *   the moment a request was due, so a stalled generator or server shows up in the numbers);
 * - `streams`: keeps `concurrency` streaming requests open (one round, or re-opened for a duration)
 *   and reports time to first byte and duration per stream.
 * Spec as JSON in argv[2]; prints JSON lines: `{"event":"open"}` once all streams of the first
 * round have their first byte, then `{"event":"result",...}`.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { summarize, type Summary } from './stats.js';
import { bodyMaker } from './unique-body.js';

export interface RequestSpec {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Expect an SSE stream ending in `data: [DONE]` (or `streamEnd`). */
  readonly stream: boolean;
  /** What the last event of a complete stream contains (Anthropic streams end with `message_stop`, Responses streams with `event: response.completed`). */
  readonly streamEnd?: string;
}

export interface RateSpec extends RequestSpec {
  readonly mode: 'rate';
  readonly rate: number;
  readonly durationS: number;
  /** Sent first and left out of the statistics. */
  readonly warmupS: number;
}

export interface StreamsSpec extends RequestSpec {
  readonly mode: 'streams';
  readonly concurrency: number;
  /** Streams are opened evenly over this time. */
  readonly rampMs: number;
  /** 0: one round of `concurrency` streams. Otherwise each slot opens a new stream until this elapses. */
  readonly durationS: number;
}

export type LoadSpec = RateSpec | StreamsSpec;

export interface LoadResult {
  readonly event: 'result';
  readonly sent: number;
  readonly measured: number;
  readonly ok: number;
  readonly failed: number;
  /** Status code (or error name) -> count. */
  readonly outcomes: Record<string, number>;
  readonly elapsedS: number;
  /** Milliseconds from due time to the end of the response. */
  readonly latencyMs: Summary;
  /** Milliseconds from due time to the first body byte (time to first token for streams). */
  readonly ttfbMs: Summary;
  /** The generator's own CPU time over the run. */
  readonly cpuMs: number;
  /** Largest delay between a request being due and being sent (generator health). */
  readonly maxSendLagMs: number;
}

interface Sample {
  total: number;
  ttfb: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4096, maxFreeSockets: 4096, keepAliveMsecs: 30_000 });

/** Sends one request; resolves with the outcome label and timings relative to `due`. */
function fire(spec: RequestSpec, due: number, body: Buffer, onFirstByte?: () => void): Promise<{ outcome: string; sample: Sample }> {
  return new Promise((resolve) => {
    let ttfb = Number.NaN;
    let tail = '';
    // The end marker may sit anywhere in the last event (a Responses stream's last event carries the
    // whole response): found in the stream (across chunk boundaries), and the stream ends with a
    // complete event (a blank line).
    const marker = spec.streamEnd ?? '[DONE]';
    let sawEnd = false;
    const done = (outcome: string): void => resolve({ outcome, sample: { total: performance.now() - due, ttfb } });
    const req = request(spec.url, { method: 'POST', headers: { ...spec.headers, 'content-length': String(body.length) }, agent }, (res: IncomingMessage) => {
      res.on('data', (chunk: Buffer) => {
        if (Number.isNaN(ttfb)) {
          ttfb = performance.now() - due;
          onFirstByte?.();
        }
        if (spec.stream) {
          const text = tail + chunk.toString('latin1');
          if (!sawEnd && text.includes(marker)) sawEnd = true;
          tail = text.slice(-Math.max(32, marker.length));
        }
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status === 200 && spec.stream && !(sawEnd && tail.endsWith('\n\n'))) return done('truncated');
        done(String(status));
      });
      res.on('error', (err) => done(err.name));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.name));
    req.end(body);
  });
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function runRate(spec: RateSpec): Promise<LoadResult> {
  const body = bodyMaker(spec.body);
  const totalS = spec.warmupS + spec.durationS;
  const total = Math.round(spec.rate * totalS);
  const warmupCount = Math.round(spec.rate * spec.warmupS);
  const interval = 1000 / spec.rate;
  const samples: Sample[] = [];
  const outcomes: Record<string, number> = {};
  let sent = 0;
  let maxLag = 0;
  let cpuStart = 0;
  let measureStart = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const index = sent++;
        const due = start + index * interval;
        maxLag = Math.max(maxLag, now - due);
        if (index === warmupCount) {
          cpuStart = cpuNow();
          measureStart = due;
        }
        inflight.push(
          fire(spec, due, body(index)).then(({ outcome, sample }) => {
            if (index < warmupCount) return;
            outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
            if (outcome === '200') samples.push(sample);
          }),
        );
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1);
  });
  await Promise.all(inflight);
  return result(total, total - warmupCount, samples, outcomes, (performance.now() - measureStart) / 1000, cpuNow() - cpuStart, maxLag);
}

async function runStreams(spec: StreamsSpec): Promise<LoadResult> {
  const body = bodyMaker(spec.body);
  const samples: Sample[] = [];
  const outcomes: Record<string, number> = {};
  const cpuStart = cpuNow();
  const start = performance.now();
  const deadline = start + spec.durationS * 1000;
  let sent = 0;
  let firstRoundOpen = 0;
  let announced = false;
  const announce = (): void => {
    if (announced) return;
    announced = true;
    process.stdout.write(`${JSON.stringify({ event: 'open', atMs: performance.now() - start })}\n`);
  };
  const slot = async (i: number): Promise<void> => {
    const due = start + (spec.rampMs * i) / spec.concurrency;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    let first = true;
    for (;;) {
      const t0 = performance.now();
      sent++;
      // The first byte of each slot's first stream counts towards "all open".
      const onFirst = first ? (): void => void (++firstRoundOpen === spec.concurrency && announce()) : undefined;
      first = false;
      const { outcome, sample } = await fire(spec, t0, body(sent), onFirst);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome === '200') samples.push(sample);
      if (spec.durationS === 0 || performance.now() >= deadline) return;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => slot(i)));
  announce();
  return result(sent, sent, samples, outcomes, (performance.now() - start) / 1000, cpuNow() - cpuStart, 0);
}

function result(
  sent: number,
  measured: number,
  samples: readonly Sample[],
  outcomes: Record<string, number>,
  elapsedS: number,
  cpuMs: number,
  maxSendLagMs: number,
): LoadResult {
  const ok = outcomes['200'] ?? 0;
  return {
    event: 'result',
    sent,
    measured,
    ok,
    failed: measured - ok,
    outcomes,
    elapsedS,
    latencyMs: summarize(samples.map((s) => s.total)),
    ttfbMs: summarize(samples.map((s) => s.ttfb).filter((v) => !Number.isNaN(v))),
    cpuMs,
    maxSendLagMs,
  };
}

/** The spec arrives on stdin: a body of a few MiB does not fit in a command line. */
async function readSpec(): Promise<LoadSpec> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as LoadSpec;
}

async function main(): Promise<void> {
  const spec = await readSpec();
  const res = spec.mode === 'rate' ? await runRate(spec) : await runStreams(spec);
  process.stdout.write(`${JSON.stringify(res)}\n`);
  agent.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`loadgen failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
