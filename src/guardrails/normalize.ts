/**
 * Text normalisation for guardrail matching, so look-alike tricks do not slip through: every code
 * point is NFKC-normalised (full-width letters and digits, ligatures, compatibility forms become
 * their plain forms), lower-cased (case folding), and invisible characters (zero-width spaces and
 * joiners, soft hyphens, BOM, bidirectional controls) are dropped. The result keeps a map from each
 * normalised character back to the original text, so a match found in normalised text masks the
 * right original characters (including any invisible ones inside it).
 */

/** Normalised text and, for each of its UTF-16 units, the index in the original of the code point it came from. */
export interface Normalized {
  readonly text: string;
  readonly map: readonly number[];
  /** Length of the original text. */
  readonly originalLength: number;
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

/** Normalises `text` (see the module comment). Linear in the text; ASCII takes a fast path. */
export function normalize(text: string): Normalized {
  const map: number[] = [];
  let out = '';
  const n = text.length;
  let i = 0;
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
  const start = norm.map[s] ?? norm.originalLength;
  const last = norm.map[e - 1] ?? start;
  // The end is where the next original code point after the last matched one begins.
  let end = norm.originalLength;
  for (let k = e; k < norm.map.length; k++) {
    const m = norm.map[k] as number;
    if (m > last) {
      end = m;
      break;
    }
  }
  return [start, end];
}
