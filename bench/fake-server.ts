/**
 * The fake providers in their own process, so their CPU is measured apart from the gateway's and the
 * bench runner stays idle: the OpenAI-style fake and a fake Anthropic Messages API (translated
 * scenarios). Behaviour changes arrive over IPC (`anthropic` holds the Anthropic fake's); prints
 * `{"port":N,"anthropicPort":M}` when listening.
 */
import { FakeAnthropic, type AnthropicBehaviour } from '../src/dev/fake-anthropic.js';
import { FakeProvider, type FakeBehaviour } from '../src/dev/fake-provider.js';
import { BENCH_ANTHROPIC_KEY } from './gateway-config.js';


/** A behaviour change for both fakes. */
export type FakesBehaviour = Partial<FakeBehaviour> & { readonly anthropic?: Partial<AnthropicBehaviour> };

async function main(): Promise<void> {
  const fake = new FakeProvider({ record: false, ...(JSON.parse(process.argv[2] ?? '{}') as Partial<FakeBehaviour>) }, 'bench');
  await fake.start(0);
  const anthropic = new FakeAnthropic({ record: false, apiKey: BENCH_ANTHROPIC_KEY, writeBytes: 0 });
  await anthropic.start(0);
  process.on('message', (msg: FakesBehaviour) => {
    const { anthropic: a, ...openai } = msg;
    Object.assign(fake.behaviour, openai);
    if (a) Object.assign(anthropic.behaviour, a);
    process.send?.({ applied: true });
  });
  process.on('disconnect', () => void Promise.all([fake.stop(), anthropic.stop()]).then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ port: fake.port, anthropicPort: anthropic.port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fake provider failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
