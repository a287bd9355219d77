/**
 * Every relative link and #anchor in README.md and docs/**\/*.md must lead somewhere: the file (or
 * directory) exists inside the repository, and an anchor names a heading of the target Markdown
 * file, spelled the way GitHub spells heading anchors. Moving a section between files, renaming a
 * heading or deleting a file then fails `npm test` with the file, line and link that broke.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Repository root, from dist/src or src. */
const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));

/** A line of Markdown outside fenced code blocks, with its 1-based line number. */
interface ProseLine {
  readonly n: number;
  readonly text: string;
}

/** The lines of a Markdown file that are not inside ``` or ~~~ fenced code blocks. */
function proseLines(markdown: string): ProseLine[] {
  const out: ProseLine[] = [];
  let fence: { char: string; len: number } | undefined;
  markdown.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === undefined) {
      if (m?.[1] !== undefined) fence = { char: m[1][0] ?? '`', len: m[1].length };
      else out.push({ n: i + 1, text: line });
    } else if (m?.[1] !== undefined && m[1][0] === fence.char && m[1].length >= fence.len && /^\s*$/.test(line.slice(line.indexOf(m[1]) + m[1].length))) {
      fence = undefined;
    }
  });
  return out;
}

/** Removes inline code spans, so `[x](y)` written as code is not taken for a link. */
function withoutCodeSpans(text: string): string {
  return text.replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, '');
}

/** The text GitHub renders for a heading's Markdown: links become their text, markup disappears. */
function renderedText(markdown: string): string {
  return markdown
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/[`*]|~~/g, '');
}

/** GitHub's anchor for a heading text (github-slugger): lower case, punctuation dropped, spaces to '-'. */
export function slug(headingText: string): string {
  return renderedText(headingText)
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file offers: heading slugs (repeats get -1, -2, ...) and HTML id/name. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (text: string): void => {
    const base = slug(text);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  };
  const lines = proseLines(markdown);
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line.text);
    if (atx !== null) {
      add(atx[1] ?? '');
    } else if (/^ {0,3}(=+|-+)[ \t]*$/.test(line.text) && i > 0) {
      // Setext heading: the paragraph line right above (not a blank line, list item or table row).
      const prev = lines[i - 1];
      if (prev !== undefined && prev.n === line.n - 1 && /\S/.test(prev.text) && !/^\s*([-*+]\s|\d+[.)]\s|\||#)/.test(prev.text)) {
        add(prev.text.trim());
      }
    }
    for (const m of line.text.matchAll(/<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']/gi)) {
      if (m[1] !== undefined) anchors.add(m[1]);
    }
  });
  return anchors;
}

/** A link found in a Markdown file. */
export interface FoundLink {
  readonly line: number;
  readonly target: string;
}

/** Inline links and images `[text](target)` and reference definitions `[id]: target`, outside code. */
export function linksOf(markdown: string): FoundLink[] {
  const links: FoundLink[] = [];
  for (const { n, text } of proseLines(markdown)) {
    const prose = withoutCodeSpans(text);
    for (const m of prose.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      links.push({ line: n, target: (m[1] ?? '').replace(/^<|>$/g, '') });
    }
    const def = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(prose);
    if (def?.[1] !== undefined) links.push({ line: n, target: def[1].replace(/^<|>$/g, '') });
  }
  return links;
}

/** One link that does not resolve, as `file:line: target: why`. */
export type Problem = string;

/**
 * Checks every link of the given Markdown files (paths relative to root). External links (any
 * scheme, or //host) are not fetched; everything else must resolve inside root.
 */
export function checkLinks(root: string, files: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsAt = (abs: string): Set<string> => {
    let a = anchorCache.get(abs);
    if (a === undefined) {
      a = anchorsOf(readFileSync(abs, 'utf8'));
      anchorCache.set(abs, a);
    }
    return a;
  };
  const rootAbs = resolve(root);
  for (const file of files) {
    const fileAbs = resolve(rootAbs, file);
    for (const { line, target } of linksOf(readFileSync(fileAbs, 'utf8'))) {
      const where = `${file}:${line}: ${target === '' ? '(empty link)' : target}`;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue;
      if (target === '') {
        problems.push(`${where}: empty link target`);
        continue;
      }
      const hashAt = target.indexOf('#');
      const pathPart = (hashAt === -1 ? target : target.slice(0, hashAt)).replace(/\?.*$/, '');
      const anchor = hashAt === -1 ? undefined : target.slice(hashAt + 1);
      let decodedPath: string;
      let decodedAnchor: string | undefined;
      try {
        decodedPath = decodeURIComponent(pathPart);
        decodedAnchor = anchor === undefined ? undefined : decodeURIComponent(anchor);
      } catch {
        problems.push(`${where}: not a valid URL (bad %-escape)`);
        continue;
      }
      const targetAbs = decodedPath === '' ? fileAbs : decodedPath.startsWith('/') ? join(rootAbs, decodedPath) : resolve(dirname(fileAbs), decodedPath);
      if (targetAbs !== rootAbs && !targetAbs.startsWith(rootAbs + sep)) {
        problems.push(`${where}: leads outside the repository`);
        continue;
      }
      if (!existsSync(targetAbs)) {
        problems.push(`${where}: no such file or directory (${relative(rootAbs, targetAbs)})`);
        continue;
      }
      if (decodedAnchor === undefined) continue;
      if (decodedAnchor === '') {
        problems.push(`${where}: empty #anchor`);
      } else if (statSync(targetAbs).isFile() && targetAbs.endsWith('.md')) {
        if (!anchorsAt(targetAbs).has(decodedAnchor)) {
          problems.push(`${where}: no heading with the anchor #${decodedAnchor} in ${relative(rootAbs, targetAbs)}`);
        }
      } else if (!/^L\d+(C\d+)?(-L\d+(C\d+)?)?$/.test(decodedAnchor)) {
        problems.push(`${where}: #${decodedAnchor} can only be checked in a Markdown file (or be a line anchor #L12)`);
      }
    }
  }
  return problems;
}

/** README.md and every Markdown file under docs/, relative to root. */
function docFiles(root: string): string[] {
  const out = ['README.md'];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = `${dir}/${name}`;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.md')) out.push(rel);
    }
  };
  if (existsSync(join(root, 'docs'))) walk('docs');
  return out;
}

/** A throw-away repository for the checker's own tests. */
function scratchRepo(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-docs-links-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('documentation links', () => {
  it('every relative link and #anchor in README.md and docs/ resolves', () => {
    const files = docFiles(ROOT);
    assert.ok(files.length > 1 && files.includes('docs/resilience.md'), `found only ${files.join(', ')} under ${ROOT}`);
    const links = files.reduce((n, f) => n + linksOf(readFileSync(join(ROOT, f), 'utf8')).length, 0);
    assert.ok(links > 20, `found only ${links} links: is the link parser broken?`);
    assert.deepEqual(checkLinks(ROOT, files), []);
  });

  it('keeps the README a first read (reference material belongs in docs/)', () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
    assert.ok(lines <= 280, `README.md has ${lines} lines; move reference sections into docs/ and link them (issue 12 asks for about 250)`);
  });
});

describe('the link checker', () => {
  it('spells heading anchors the way GitHub does', () => {
    assert.equal(slug('Limits, quotas and usage'), 'limits-quotas-and-usage');
    assert.equal(slug('Self-hosted endpoints (Kubernetes)'), 'self-hosted-endpoints-kubernetes');
    assert.equal(slug('Tokens: reservation, reconciliation and the overshoot bound'), 'tokens-reservation-reconciliation-and-the-overshoot-bound');
    assert.equal(slug('Reading the latest run (25 Nov 2026, 14:32 UTC)'), 'reading-the-latest-run-25-nov-2026-1432-utc');
    assert.equal(slug('1,000 concurrent slow streams (30 chunks, 5 chunks/s)'), '1000-concurrent-slow-streams-30-chunks-5-chunkss');
    assert.equal(slug('The `x-tollgate-route` header and **why**'), 'the-x-tollgate-route-header-and-why');
    assert.equal(slug('See [the docs](docs/a.md) & more'), 'see-the-docs--more');
    assert.equal(slug('snake_case stays'), 'snake_case-stays');
    assert.equal(slug('Größe über alles'), 'größe-über-alles');
  });

  it('numbers repeated headings, ignores headings in code blocks and reads setext and HTML anchors', () => {
    const anchors = anchorsOf(
      ['# Tests', '## Tests', '### Tests ###', '```sh', '# not a heading', '```', 'Setext title', '===', '<a id="custom"></a>', '~~~', '## Fenced', '~~~'].join('\n'),
    );
    assert.deepEqual([...anchors].sort(), ['custom', 'setext-title', 'tests', 'tests-1', 'tests-2']);
  });

  it('finds inline, image and reference links but not links written as code', () => {
    const links = linksOf(
      [
        'See [a](a.md), ![img](img/x.png "title") and [b](<b c.md#x>).',
        'Code: `[not](a link)` and',
        '```',
        '[nor](this.md)',
        '```',
        '[ref]: ref.md#top',
        'A link with parentheses: [p](docs/p_(1).md).',
      ].join('\n'),
    );
    assert.deepEqual(
      links.map((l) => `${l.line}:${l.target}`),
      ['1:a.md', '1:img/x.png', '1:b c.md#x', '6:ref.md#top', '7:docs/p_(1).md'],
    );
  });

  it('passes good links and reports every broken one with its file and line', (t) => {
    const dir = scratchRepo({
      'README.md': [
        '# Project',
        '',
        '## Quick start',
        '',
        'Good: [docs](docs/guide.md), [a section](docs/guide.md#the-file-source), [here](#quick-start),',
        '[a dir](src), [code](src/main.ts#L10-L20), [web](https://example.com/x#y), [mail](mailto:a@b.c).',
        'Broken: [gone](docs/missing.md), [anchor](docs/guide.md#no-such-heading), [local](#nowhere),',
        '[outside](../secret.md), [anchor on code](src/main.ts#main), [empty]().',
      ].join('\n'),
      'docs/guide.md': ['# Guide', '', '## The file source', '', 'Back to the [README](../README.md#project); wrong: [README](README.md).'].join('\n'),
      'src/main.ts': 'export {};\n',
    });
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    assert.deepEqual(checkLinks(dir, ['README.md', 'docs/guide.md']), [
      'README.md:7: docs/missing.md: no such file or directory (docs/missing.md)',
      'README.md:7: docs/guide.md#no-such-heading: no heading with the anchor #no-such-heading in docs/guide.md',
      'README.md:7: #nowhere: no heading with the anchor #nowhere in README.md',
      'README.md:8: ../secret.md: leads outside the repository',
      'README.md:8: src/main.ts#main: #main can only be checked in a Markdown file (or be a line anchor #L12)',
      'README.md:8: (empty link): empty link target',
      'docs/guide.md:5: README.md: no such file or directory (docs/README.md)',
    ]);
  });
});
