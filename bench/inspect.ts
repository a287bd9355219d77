/**
 * Live memory of a Node process after a full garbage collection, through its inspector (the bench
 * starts Tollgate with `--inspect=127.0.0.1:<port>`; nothing is attached while load is measured).
 */

export interface LiveMemory {
  /** V8 heap in use after a full GC. */
  readonly heapUsed: number;
  /** Memory of Buffers and other objects outside the V8 heap, after the same GC. */
  readonly external: number;
  readonly rss: number;
}

interface CdpReply {
  readonly id?: number;
  readonly result?: { readonly result?: { readonly value?: unknown } };
  readonly error?: { readonly message: string };
}

/** Forces a full GC in the inspected process and reads `process.memoryUsage()` there. */
export async function liveMemory(inspectPort: number): Promise<LiveMemory> {
  return withInspector(inspectPort, async (call) => {
    await call('HeapProfiler.collectGarbage');
    const reply = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const usage = JSON.parse(String(reply.result?.result?.value)) as { heapUsed: number; external: number; rss: number };
    return { heapUsed: usage.heapUsed, external: usage.external, rss: usage.rss };
  });
}

/** Evaluates `expression` in the inspected process and returns its value (JSON-compatible). */
export async function evaluateIn(inspectPort: number, expression: string): Promise<unknown> {
  return withInspector(inspectPort, async (call) => {
    const reply = await call('Runtime.evaluate', { expression, returnByValue: true });
    return reply.result?.result?.value;
  });
}

type CdpCall = (method: string, params?: Record<string, unknown>) => Promise<CdpReply>;

async function withInspector<T>(inspectPort: number, use: (call: CdpCall) => Promise<T>): Promise<T> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${inspectPort}`);
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('inspector connection failed')), { once: true });
  });
  const pending = new Map<number, (reply: CdpReply) => void>();
  ws.addEventListener('message', (event: MessageEvent) => {
    const reply = JSON.parse(String(event.data)) as CdpReply;
    if (reply.id !== undefined) pending.get(reply.id)?.(reply);
  });
  let nextId = 1;
  const call: CdpCall = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (reply) => (reply.error ? reject(new Error(`${method}: ${reply.error.message}`)) : resolve(reply)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    return await use(call);
  } finally {
    ws.close();
  }
}
