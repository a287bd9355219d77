/**
 * The fake providers in their own process, so their CPU is measured apart from the gateway's and the
 * bench runner stays idle: the OpenAI-style fake (chat, embeddings, Responses), a fake Anthropic
 * Messages API and a fake AWS Bedrock runtime (translated scenarios; Bedrock checks every SigV4
 * signature and streams AWS event-stream frames). Behaviour changes arrive over IPC (`anthropic` and
 * `bedrock` hold those fakes'); prints `{"port":N,"anthropicPort":M,"bedrockPort":B}` when listening.
 */
import { FakeAnthropic, type AnthropicBehaviour } from '../src/dev/fake-anthropic.js';
import { FakeBedrock, type BedrockBehaviour } from '../src/dev/fake-bedrock.js';
import { FakeProvider, type FakeBehaviour } from '../src/dev/fake-provider.js';
import { BENCH_ANTHROPIC_KEY, BENCH_AWS } from './gateway-config.js';


/** A behaviour change for the fakes. */
export type FakesBehaviour = Partial<FakeBehaviour> & { readonly anthropic?: Partial<AnthropicBehaviour>; readonly bedrock?: Partial<BedrockBehaviour> };

async function main(): Promise<void> {
  const fake = new FakeProvider({ record: false, ...(JSON.parse(process.argv[2] ?? '{}') as Partial<FakeBehaviour>) }, 'bench');
  await fake.start(0);
  const anthropic = new FakeAnthropic({ record: false, apiKey: BENCH_ANTHROPIC_KEY, writeBytes: 0 });
  await anthropic.start(0);
  const bedrock = new FakeBedrock({ record: false, ...BENCH_AWS, writePerEvent: true });
  await bedrock.start(0);
  process.on('message', (msg: FakesBehaviour) => {
    const { anthropic: a, bedrock: b, ...openai } = msg;
    Object.assign(fake.behaviour, openai);
    if (a) Object.assign(anthropic.behaviour, a);
    if (b) Object.assign(bedrock.behaviour, b);
    process.send?.({ applied: true });
  });
  process.on('disconnect', () => void Promise.all([fake.stop(), anthropic.stop(), bedrock.stop()]).then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ port: fake.port, anthropicPort: anthropic.port, bedrockPort: bedrock.port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fake provider failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
