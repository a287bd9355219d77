/**
 * Text normalisation for guardrail matching, so look-alike tricks do not slip through: every code
 * point is NFKC-normalised (full-width letters and digits, ligatures, compatibility forms become
 * their plain forms), lower-cased (case folding), and invisible characters (zero-width spaces and
 * joiners, soft hyphens, BOM, bidirectional controls) are dropped. The result keeps a map from each
 * normalised character back to the original text, so a match found in normalised text masks the
 * right original characters (including any invisible ones inside it).
 */

/**
 * Normalised text and, for each of its UTF-16 units, the index in the original of the code point it
 * came from. `map` is undefined when that is the identity (all-ASCII text, the common case: no array
 * of one number per character is built); read it through originalIndex.
 */
export interface Normalized {
  readonly text: string;
  readonly map: readonly number[] | undefined;
  /** Length of the original text. */
  readonly originalLength: number;
}

/** The original index of normalised unit `k` (originalLength past the end). */
export function originalIndex(norm: Normalized, k: number): number {
  if (norm.map === undefined) return k < norm.originalLength ? k : norm.originalLength;
  return norm.map[k] ?? norm.originalLength;
}

/** Invisible code points that are removed before matching. */
export function isInvisible(cp: number): boolean {
  return (
    cp === 0x00ad || // soft hyphen
    cp === 0x034f || // combining grapheme joiner
    cp === 0x061c || // Arabic letter mark
    cp === 0x180e || // Mongolian vowel separator
    (cp >= 0x200b && cp <= 0x200f) || // zero-width space/non-joiner/joiner, LRM, RLM
    (cp >= 0x202a && cp <= 0x202e) || // bidi embeddings and overrides
    (cp >= 0x2060 && cp <= 0x2064) || // word joiner, invisible operators
    (cp >= 0x2066 && cp <= 0x2069) || // bidi isolates
    cp === 0xfeff // BOM / zero-width no-break space
  );
}

/** Any non-ASCII UTF-16 unit. */
const NON_ASCII = /[^\x00-\x7f]/;

/** Normalises `text` (see the module comment). Linear in the text; ASCII takes a fast path. */
export function normalize(text: string): Normalized {
  const n = text.length;
  // All ASCII (most prompts and answers): lower-casing is the whole job and keeps every index.
  const first = text.search(NON_ASCII);
  if (first < 0) return { text: text.toLowerCase(), map: undefined, originalLength: n };
  const map: number[] = new Array<number>(first);
  for (let k = 0; k < first; k++) map[k] = k;
  let out = text.slice(0, first).toLowerCase();
  let i = first;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 32) : text[i];
      map.push(i);
      i++;
      continue;
    }
    const cp = text.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (!isInvisible(cp)) {
      const folded = String.fromCodePoint(cp).normalize('NFKC').toLowerCase();
      for (let k = 0; k < folded.length; k++) {
        // An NFKC expansion may itself contain invisible characters (rare); drop them too.
        const fc = folded.charCodeAt(k);
        if (isInvisible(fc)) continue;
        out += folded[k];
        map.push(i);
      }
    }
    i += width;
  }
  return { text: out, map, originalLength: n };
}

/** Original [start, end) of the normalised range [s, e). */
export function originalRange(norm: Normalized, s: number, e: number): [number, number] {
  const map = norm.map;
  if (map === undefined) return [Math.min(s, norm.originalLength), Math.min(e, norm.originalLength)];
  const start = map[s] ?? norm.originalLength;
  const last = map[e - 1] ?? start;
  // The end is where the next original code point after the last matched one begins.
  let end = norm.originalLength;
  for (let k = e; k < map.length; k++) {
    const m = map[k] as number;
    if (m > last) {
      end = m;
      break;
    }
  }
  return [start, end];
}
