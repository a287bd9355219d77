/**
 * Repository rules that a compiler does not check, enforced on every `npm test` (the lint part of
 * it): no skipped or focused tests, no `any` outside generated code, logging only through pino in
 * the gateway, and no registry host names, machine paths or real-looking API keys in the repo.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Repository root, from dist/src or src. */
const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'coverage', 'generated', 'results']);
const TEXT = /\.(ts|js|mjs|cjs|json|ya?ml|md|sh|tpl|txt)$|^Dockerfile$/;

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name) || name === 'package-lock.json') continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) files(path, out);
    else if (TEXT.test(name) && st.size < 2_000_000) out.push(path);
  }
  return out;
}

const ALL = files(ROOT);
const rel = (p: string): string => relative(ROOT, p);
const THIS_FILE = 'src/conventions.test.ts';

function offenders(paths: readonly string[], pattern: RegExp): string[] {
  const found: string[] = [];
  for (const p of paths) {
    if (rel(p) === THIS_FILE) continue;
    readFileSync(p, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (pattern.test(line)) found.push(`${rel(p)}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
  }
  return found;
}

describe('repository conventions', () => {
  it('finds the repository files', () => {
    assert.ok(ALL.some((p) => rel(p) === 'package.json'), `root detection failed: ${ROOT}`);
    assert.ok(ALL.some((p) => rel(p) === 'src/main.ts'));
  });

  it('has no skipped, todo or focused tests', () => {
    const tests = ALL.filter((p) => /\.test\.ts$/.test(p) || rel(p).startsWith('test/'));
    assert.deepEqual(offenders(tests, /\b(it|test|describe|suite)\.(skip|todo|only)\(|[{,]\s*(skip|todo|only)\s*:\s*(true|['"`])/), []);
  });

  it('uses no `any` outside generated code', () => {
    const ts = ALL.filter((p) => p.endsWith('.ts'));
    assert.deepEqual(offenders(ts, /:\s*any(\[\])?\s*[;,)=>|\]]|\bas any\b|<any>/), []);
  });

  it('logs through pino in the gateway (no console.* in src outside dev tools and tests)', () => {
    const src = ALL.filter((p) => rel(p).startsWith('src/') && p.endsWith('.ts') && !p.endsWith('.test.ts') && !rel(p).startsWith('src/dev/'));
    assert.deepEqual(offenders(src, /\bconsole\.(log|error|warn|info|debug)\(/), []);
  });

  it('contains no registry host names, machine paths or real-looking API keys', () => {
    const hosts = /registry\.npmjs\.org|pypi\.org|pythonhosted\.org|proxy\.golang\.org|crates\.io|repo1\.maven\.org|repo\.maven\.apache\.org|deb\.debian\.org|security\.debian\.org/;
    assert.deepEqual(offenders(ALL, hosts), []);
    assert.deepEqual(offenders(ALL, /(^|[\s"'`(=:])\/work\//), []);
    assert.deepEqual(offenders(ALL, /\bsk-(proj-)?[A-Za-z0-9_-]{40,}|\bAKIA[0-9A-Z]{16}\b|\bghp_[A-Za-z0-9]{36}\b|\bxox[bp]-[0-9A-Za-z-]{20,}/), []);
  });
});
