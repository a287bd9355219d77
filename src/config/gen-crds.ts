/**
 * `npm run gen:crds`: writes crds/*.yaml and the Helm chart's copy (charts/tollgate/crds/) from
 * schema.ts. CI fails when the committed files differ from what this writes (crd.test.ts).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderAllCrds } from './crd.js';

/** Directories that hold the generated CRDs, relative to the repository root. */
export const CRD_DIRS = ['crds', 'charts/tollgate/crds'] as const;

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const files = renderAllCrds();
  for (const dir of CRD_DIRS) {
    const abs = join(root, dir);
    await mkdir(abs, { recursive: true });
    for (const old of await readdir(abs)) if (old.endsWith('.yaml') && !files.has(old)) await rm(join(abs, old));
    for (const [name, text] of files) await writeFile(join(abs, name), text);
    process.stdout.write(`wrote ${[...files.keys()].map((n) => join(dir, n)).join(', ')}\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`gen:crds failed: ${String(err)}\n`);
    process.exitCode = 1;
  });
}
