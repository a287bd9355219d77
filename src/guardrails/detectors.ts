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
  /**
   * A cheap necessary condition (a character search): when false the regex cannot match, so it is not
   * run. For the detectors whose regexes could start at almost any position (e-mail, IP addresses).
   */
  readonly precheck?: (normalized: string) => boolean;
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

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Necessary for an IP address match: a digit, a dot and a digit (IPv4), or two colons at most four
 * characters apart (IPv6, whose regex needs at least two `x:` groups in a row). Found with indexOf,
 * which is far cheaper than the full regex trying every position of ordinary prose.
 */
export function mayHoldIp(t: string): boolean {
  for (let i = t.indexOf('.'); i >= 0; i = t.indexOf('.', i + 1)) {
    if (i > 0 && isDigit(t.charCodeAt(i - 1)) && isDigit(t.charCodeAt(i + 1))) return true;
  }
  for (let i = t.indexOf(':'); i >= 0; ) {
    const next = t.indexOf(':', i + 1);
    if (next < 0) return false;
    if (next - i <= 5) return true;
    i = next;
  }
  return false;
}

/** Digits in a text, and whether two letters are followed by two digits anywhere (an IBAN's start). */
interface DigitStats {
  readonly digits: number;
  readonly lettersThenDigits: boolean;
}

let statsText: string | undefined;
let statsValue: DigitStats = { digits: 0, lettersThenDigits: false };

function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

/**
 * One pass over a normalised text for the digit-based detectors' prechecks, remembered for the last
 * text (findAll runs every detector over the same string in a row).
 */
export function digitStats(t: string): DigitStats {
  if (t === statsText) return statsValue;
  let digits = 0;
  let lettersThenDigits = false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      digits++;
      if (!lettersThenDigits && i >= 2 && isLower(t.charCodeAt(i - 1)) && isLower(t.charCodeAt(i - 2)) && isDigit(t.charCodeAt(i + 1))) lettersThenDigits = true;
    }
  }
  statsText = t;
  statsValue = { digits, lettersThenDigits };
  return statsValue;
}

/** Necessary for an e-mail match. */
function mayHoldEmail(t: string): boolean {
  return t.includes('@');
}

/** The PII detectors, by kind. Masks name the kind so the text stays readable. */
export const PII_DETECTORS: Readonly<Record<PiiKind, Detector>> = {
  email: {
    rule: 'pii:email',
    regex: /(?<![a-z0-9._%+-])[a-z0-9._%+-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,6}\.[a-z]{2,24}(?![a-z0-9-])/g,
    precheck: mayHoldEmail,
    maxLength: 96,
    mask: '[EMAIL]',
  },
  phone: {
    rule: 'pii:phone',
    regex: /(?<![\w+])(?:\+|00)[1-9][\d .()-]{6,20}\d(?!\d)/g,
    validate: validPhone,
    precheck: (t) => (t.includes('+') || t.includes('00')) && digitStats(t).digits >= 8,
    maxLength: 24,
    mask: '[PHONE]',
  },
  paymentCard: {
    rule: 'pii:paymentCard',
    regex: /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g,
    validate: validCard,
    precheck: (t) => digitStats(t).digits >= 13,
    maxLength: 25,
    mask: '[CARD]',
  },
  iban: {
    rule: 'pii:iban',
    // Written as one block or in the printed groups of four (ISO 13616 paper format).
    regex: /(?<![a-z0-9])[a-z]{2}\d{2}(?:[a-z0-9]{11,30}|(?: [a-z0-9]{4}){2,7}(?: [a-z0-9]{1,4})?)(?![a-z0-9])/g,
    validate: validIban,
    precheck: (t) => digitStats(t).lettersThenDigits,
    maxLength: 42,
    mask: '[IBAN]',
  },
  ipAddress: {
    rule: 'pii:ipAddress',
    regex: new RegExp(`(?<![\\d.])(?:${OCTET}\\.){3}${OCTET}(?!\\.?\\d)|(?<![0-9a-f:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![0-9a-f:])`, 'g'),
    validate: (t) => !t.includes(':') || validIpv6(t),
    precheck: mayHoldIp,
    maxLength: 40,
    mask: '[IP]',
  },
  cnResidentId: {
    rule: 'pii:cnResidentId',
    regex: /(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dx](?![\dx])/g,
    validate: validCnResidentId,
    precheck: (t) => digitStats(t).digits >= 17,
    maxLength: 18,
    mask: '[ID]',
  },
  usSsn: {
    rule: 'pii:usSsn',
    regex: /(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])/g,
    precheck: (t) => digitStats(t).digits >= 9,
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
