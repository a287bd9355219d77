/**
 * The fake provider in its own process, so its CPU is measured apart from the gateway's and the
 * bench runner stays idle. Behaviour changes arrive over IPC; prints `{"port":N}` when listening.
 */
import { FakeProvider, type FakeBehaviour } from '../src/dev/fake-provider.js';

async function main(): Promise<void> {
  const fake = new FakeProvider({ record: false, ...(JSON.parse(process.argv[2] ?? '{}') as Partial<FakeBehaviour>) }, 'bench');
  await fake.start(0);
  process.on('message', (msg: Partial<FakeBehaviour>) => {
    Object.assign(fake.behaviour, msg);
    process.send?.({ applied: true });
  });
  process.on('disconnect', () => void fake.stop().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ port: fake.port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fake provider failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
