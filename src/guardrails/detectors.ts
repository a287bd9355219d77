/**
 * The built-in detectors. Each is a regular expression (compiled once, at module load) that finds
 * candidates in normalised text (normalize.ts: NFKC, lower case, no invisible characters), plus a
 * validator that keeps only real ones (Luhn for cards, mod-97 for IBANs, the check digit of CN
 * resident IDs, reserved ranges for US SSNs). The regexes are written to backtrack at most a bounded
 * amount per position: no nested unbounded quantifiers.
 *
 * `maxLength` is the longest text a detector can match: the streaming window (window.ts) holds back
 * that many characters so a match split across chunks is still whole when it is checked.
 */
import { isIPv6 } from 'node:net';
import type { PiiKind } from '../config/types.js';

export interface Detector {
  /** Rule name in logs and metrics (`pii:email`, `keywords`, or the pattern's name). */
  readonly rule: string;
  /** A global regex; `lastIndex` is reset before every scan. */
  readonly regex: RegExp;
  readonly validate?: (match: string) => boolean;
  readonly maxLength: number;
  /** Replacement text when the action is `mask`. */
  readonly mask: string;
}

/** Luhn checksum over the digits of `text`. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function onlyDigits(text: string): string {
  return text.replace(/\D/g, '');
}

/** Payment card: 13-19 digits, a known network's first digit (2-6), Luhn-valid. */
export function validCard(text: string): boolean {
  const digits = onlyDigits(text);
  if (digits.length < 13 || digits.length > 19) return false;
  const first = digits.charCodeAt(0) - 48;
  return first >= 2 && first <= 6 && luhnValid(digits);
}

/** IBAN (ISO 13616): letters and digits, 15-34 long, mod 97 of the rearranged number is 1. */
export function validIban(text: string): boolean {
  const s = text.replace(/ /g, '').toUpperCase();
  if (s.length < 15 || s.length > 34 || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s)) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    const v = c >= 65 ? c - 55 : c - 48;
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

const CN_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CN_CHECK = '10x98765432';

/** CN resident ID (GB 11643): 17 digits, a real birth date, and the ISO 7064 MOD 11-2 check character. */
export function validCnResidentId(text: string): boolean {
  if (text.length !== 18) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (text.charCodeAt(i) - 48) * (CN_WEIGHTS[i] as number);
  if (CN_CHECK[sum % 11] !== text[17]) return false;
  const y = Number(text.slice(6, 10));
  const m = Number(text.slice(10, 12));
  const d = Number(text.slice(12, 14));
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/** International phone number: `+` or `00`, country code, 8-15 digits in all, single separators. */
export function validPhone(text: string): boolean {
  const digits = onlyDigits(text.startsWith('00') ? text.slice(2) : text);
  if (digits.length < 8 || digits.length > 15) return false;
  return !/[ .\-]{2}|\(\)|[()][()]/.test(text) && (text.match(/\(/g)?.length ?? 0) === (text.match(/\)/g)?.length ?? 0);
}

function validIpv6(text: string): boolean {
  // Require a real address, not a time like 12:30:45 or a lone `::`.
  return text.length >= 6 && isIPv6(text);
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

/** The PII detectors, by kind. Masks name the kind so the text stays readable. */
export const PII_DETECTORS: Readonly<Record<PiiKind, Detector>> = {
  email: {
    rule: 'pii:email',
    regex: /(?<![a-z0-9._%+-])[a-z0-9._%+-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,6}\.[a-z]{2,24}(?![a-z0-9-])/g,
    maxLength: 96,
    mask: '[EMAIL]',
  },
  phone: {
    rule: 'pii:phone',
    regex: /(?<![\w+])(?:\+|00)[1-9][\d .()-]{6,20}\d(?!\d)/g,
    validate: validPhone,
    maxLength: 24,
    mask: '[PHONE]',
  },
  paymentCard: {
    rule: 'pii:paymentCard',
    regex: /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g,
    validate: validCard,
    maxLength: 25,
    mask: '[CARD]',
  },
  iban: {
    rule: 'pii:iban',
    // Written as one block or in the printed groups of four (ISO 13616 paper format).
    regex: /(?<![a-z0-9])[a-z]{2}\d{2}(?:[a-z0-9]{11,30}|(?: [a-z0-9]{4}){2,7}(?: [a-z0-9]{1,4})?)(?![a-z0-9])/g,
    validate: validIban,
    maxLength: 42,
    mask: '[IBAN]',
  },
  ipAddress: {
    rule: 'pii:ipAddress',
    regex: new RegExp(`(?<![\\d.])(?:${OCTET}\\.){3}${OCTET}(?!\\.?\\d)|(?<![0-9a-f:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![0-9a-f:])`, 'g'),
    validate: (t) => !t.includes(':') || validIpv6(t),
    maxLength: 40,
    mask: '[IP]',
  },
  cnResidentId: {
    rule: 'pii:cnResidentId',
    regex: /(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dx](?![\dx])/g,
    validate: validCnResidentId,
    maxLength: 18,
    mask: '[ID]',
  },
  usSsn: {
    rule: 'pii:usSsn',
    regex: /(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])/g,
    maxLength: 11,
    mask: '[SSN]',
  },
};

/** Escapes a literal for use in a RegExp. */
function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * One detector for a keyword list: the normalised words as one alternation (longest first, so the
 * longest keyword at a position wins). Matching is by substring, which also catches keywords inside
 * words and in scripts without spaces.
 */
export function keywordDetector(normalizedWords: readonly string[], mask: string): Detector {
  const words = [...new Set(normalizedWords.filter((w) => w.length > 0))].sort((a, b) => b.length - a.length);
  return {
    rule: 'keywords',
    regex: new RegExp(words.map(escapeRegex).join('|'), 'gu'),
    maxLength: words.reduce((m, w) => Math.max(m, w.length), 1),
    mask,
  };
}

/** Compiles a user pattern (`u` flag, matched against normalised text); an error message when it does not compile. */
export function patternDetector(name: string, source: string, maxLength: number, mask: string): Detector | string {
  try {
    const regex = new RegExp(source, 'gu');
    if (regex.test('')) return `pattern ${name} matches the empty string`;
    return { rule: name, regex, maxLength, mask };
  } catch (err) {
    return `pattern ${name} is not a valid regular expression: ${(err as Error).message}`;
  }
}
