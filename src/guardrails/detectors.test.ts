import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PiiKind } from '../config/types.js';
import { compileGuardrail, type CompiledGuardrail } from './compile.js';
import { digitStats, luhnValid, mayHoldIp, PII_DETECTORS, validCard, validCnResidentId, validIban, type Detector } from './detectors.js';
import { normalize, originalRange } from './normalize.js';
import { checkText, findAll, type Finding } from './scan.js';
import { PII_KINDS } from '../config/types.js';

const guard = (pii: PiiKind): CompiledGuardrail => {
  const g = compileGuardrail({ name: 't', pii: { [pii]: 'mask' } });
  assert.ok(!Array.isArray(g));
  return g;
};
const masked = (pii: PiiKind, text: string): string => checkText(text, [guard(pii)]).text;

/** [detector, text that must be masked, what it becomes, texts that must pass untouched] */
const CASES: readonly [PiiKind, string, string, readonly string[]][] = [
  ['email', 'write to John.Doe+ai@Mail.Example.co.uk today', 'write to [EMAIL] today', ['user@localhost', 'a@b', 'price @ 5.00', 'x@y.c']],
  ['phone', 'call +1 (415) 555-0100 or 0049 30 12345678', 'call [PHONE] or [PHONE]', ['+12', 'version 1.2.3', 'call 555-0100', '+1 2', '+49--30--1234567']],
  ['paymentCard', 'visa 4111111111111111, amex 3782-822463-10005, mc 5555 5555 5555 4444', 'visa [CARD], amex [CARD], mc [CARD]', ['4111111111111112', '1234 5678 9012 3456', '0000000000000000', 'order 12345678901234567890123']],
  ['iban', 'DE89370400440532013000 and GB82 WEST 1234 5698 7654 32', '[IBAN] and [IBAN]', ['DE89370400440532013001', 'GB82 WEST 1234 5698 7654 33', 'AB12 word word']],
  ['ipAddress', 'from 10.0.0.1, 255.255.255.255, fe80::1:2 and 2001:0db8:0000:0000:0000:ff00:0042:8329', 'from [IP], [IP], [IP] and [IP]', ['1.2.3.4.5', 'v1.2.3', '256.1.1.1', 'at 12:30:45', 'a::b', '999.1.1.1']],
  ['cnResidentId', 'ID 11010519491231002X and 440524188001010014', 'ID [ID] and [ID]', ['110105194912310021', '11010519491331002X', '1101051949123100211']],
  ['usSsn', 'SSN 123-45-6789 or 078 05 1120', 'SSN [SSN] or [SSN]', ['000-12-3456', '666-12-3456', '912-12-3456', '123-00-4567', '123-45-0000', '123-45-67890', '123456789', '123-45 6789']],
];

describe('PII detectors', () => {
  for (const [kind, text, expected, negatives] of CASES) {
    it(`${kind}: finds valid ones, leaves look-alikes alone`, () => {
      assert.equal(masked(kind, text), expected);
      for (const n of negatives) assert.equal(masked(kind, n), n, `${kind} must not match ${JSON.stringify(n)}`);
    });
  }

  it('checksums: Luhn, IBAN mod 97, CN check digit', () => {
    assert.ok(luhnValid('79927398713'));
    assert.ok(!luhnValid('79927398710'));
    assert.ok(validCard('4012 8888 8888 1881'));
    assert.ok(!validCard('1111 1111 1111 1117'), 'no card network starts with 1');
    assert.ok(validIban('fr14 2004 1010 0505 0001 3m02 606'));
    assert.ok(!validIban('fr14 2004 1010 0505 0001 3m02 607'));
    assert.ok(validCnResidentId('11010519491231002x'));
    assert.ok(!validCnResidentId('110105194902301234'), 'February 30th is no birth date');
  });

  it('finds PII written with full-width digits and invisible characters', () => {
    assert.equal(masked('paymentCard', 'card ４１１１ １１１１ １１１１ １１１１!'), 'card [CARD]!');
    assert.equal(masked('email', 'j\u200bohn@exa\u00admple.com.'), '[EMAIL].');
  });
});

describe('normalisation', () => {
  it('folds case and width, expands compatibility forms, drops invisible characters, and maps back', () => {
    const n = normalize('Ａb\u200BＣ\uFB01ne');
    assert.equal(n.text, 'abcfine');
    assert.deepEqual(originalRange(n, 0, 3), [0, 4], 'the zero-width space inside the match is covered');
    assert.deepEqual(originalRange(n, 3, 5), [4, 5], 'the ligature is masked whole');
    const astral = normalize('x\u{1D400}y');
    assert.equal(astral.text, 'xay', 'mathematical bold A');
    assert.deepEqual(originalRange(astral, 1, 2), [1, 3]);
  });
});

describe('guardrail compilation', () => {
  it('refuses bad and empty-matching patterns with a message naming them', () => {
    const bad = compileGuardrail({ name: 'g', patterns: [{ name: 'p1', regex: '(unclosed', action: 'block' }, { name: 'p2', regex: 'a*', action: 'mask' }] });
    assert.ok(Array.isArray(bad));
    assert.match(bad[0] ?? '', /pattern p1 is not a valid regular expression/);
    assert.match(bad[1] ?? '', /pattern p2 matches the empty string/);
  });

  it('matches keywords case- and width-insensitively, the longest first, and sizes the window', () => {
    const g = compileGuardrail({ name: 'g', keywords: { action: 'mask', words: ['Ab', 'ABCDEF'] }, patterns: [{ name: 'p', regex: 'x{3}', action: 'mask', maxLength: 3 }] });
    assert.ok(!Array.isArray(g));
    assert.equal(checkText('zz abcdef zz ab xxx', [g]).text, 'zz **** zz **** ****');
    assert.equal(g.window, 6);
  });
});

describe('prechecks (the detectors skipped when a cheap search proves they cannot match)', () => {
  const TEXTS = [
    'plain prose: nothing here, just words. and a time 12:30.',
    'write to John.Doe+ai@Mail.Example.co.uk today',
    'call +1 (415) 555-0100 or 0049 30 12345678',
    'visa 4111111111111111, amex 3782-822463-10005',
    'iban DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432',
    'hosts 192.168.1.20, 10.0.0.1 and 2001:db8::8a2e:370:7334 and ::1 and fe80::1%eth0',
    'id 11010519491231002x and ssn 078-05-1120 / 219 09 9999',
    'Note 123456789012. Summarise the following note, keeping every number exact.',
    'ＦＵＬＬ ４１１１ １１１１ １１１１ １１１１ and j\u200bohn@exa\u00admple.com',
  ];
  const withoutPrecheck = (d: Detector): Detector => {
    const { precheck: _unused, ...rest } = d;
    return rest;
  };
  it('find exactly what the full regexes find, on texts with and without each kind', () => {
    const g = compileGuardrail({ name: 't', pii: Object.fromEntries(PII_KINDS.map((k) => [k, 'mask'])) });
    assert.ok(!Array.isArray(g));
    const bare: CompiledGuardrail = { ...g, rules: g.rules.map((r) => ({ ...r, detector: withoutPrecheck(r.detector) })) };
    for (const text of TEXTS) {
      const norm = normalize(text).text;
      const a: Finding[] = [];
      const b: Finding[] = [];
      findAll(norm, [g], a);
      findAll(norm, [bare], b);
      const key = (f: Finding): string => `${f.rule.detector.rule}@${f.start}-${f.end}`;
      assert.deepEqual(a.map(key), b.map(key), text);
    }
  });

  it('skip the e-mail and IP regexes on ordinary prose, and the card regex below 13 digits', () => {
    const prose = 'note: summarise this, keeping every number exact. 123456789012.';
    assert.equal(PII_DETECTORS.email.precheck?.(prose), false);
    assert.equal(PII_DETECTORS.ipAddress.precheck?.(prose), false);
    assert.equal(PII_DETECTORS.paymentCard.precheck?.(prose), false);
    assert.equal(mayHoldIp('at 1.5 pm'), true);
    assert.equal(mayHoldIp('a::b'), true);
    assert.equal(mayHoldIp('time: 12h, ratio: 3'), false);
  });

  it('digit statistics are per text (not stale from the previous one)', () => {
    assert.equal(digitStats('ab12 x').digits, 2);
    assert.equal(digitStats('ab12 x').lettersThenDigits, true);
    assert.equal(digitStats('12345').digits, 5);
    assert.equal(digitStats('12345').lettersThenDigits, false);
  });

  it('ASCII text is normalised without an index map, and maps back as the identity', () => {
    const n = normalize('Hello WORLD');
    assert.equal(n.text, 'hello world');
    assert.equal(n.map, undefined);
    assert.deepEqual(originalRange(n, 6, 11), [6, 11]);
    assert.equal(checkText('mail Bob@Example.com now', [guard('email')]).text, 'mail [EMAIL] now');
  });
});
