/**
 * Exact money arithmetic for prices, costs and budgets. No floating point anywhere a sum is kept.
 *
 * Units:
 * - A price is written per 1M tokens as a decimal string with at most 6 decimals ("2.50"). Read as an
 *   integer number of micro-units per 1M tokens, it is exactly the price of ONE token in pico-units
 *   (1e-12 of the currency): `priceMicrosPer1M` == picos per token.
 * - The cost of a request is therefore an exact integer of picos: tokens x picos-per-token, summed
 *   over the token kinds (BigInt: no overflow, no drift however many requests are added up).
 * - Budgets, Prometheus and status show micro-units (1e-6 of the currency), the unit the issue asks
 *   for; picos are kept where sums must stay exact (usage rows, the ledger).
 */

export const PICOS_PER_MICRO = 1_000_000n;
export const MICROS_PER_UNIT = 1_000_000n;
/** Decimal places a price or budget may have. */
export const MAX_DECIMALS = 6;
/**
 * `12`, `12.5`, `0.000150`: no sign, no exponent, at most 9 integer digits and 6 decimals, so any
 * amount in micro-units stays below 2^53 (exact as a JavaScript number and in Redis's Lua).
 */
export const DECIMAL_PATTERN = '^[0-9]{1,9}(\\.[0-9]{1,6})?$';
const DECIMAL_RE = new RegExp(DECIMAL_PATTERN);

/** Parses a decimal string into micro-units (`"2.50"` -> 2_500_000n). Undefined when malformed. */
export function parseMicros(text: string): bigint | undefined {
  if (!DECIMAL_RE.test(text)) return undefined;
  const [whole = '0', frac = ''] = text.split('.');
  return BigInt(whole) * MICROS_PER_UNIT + BigInt(frac.padEnd(MAX_DECIMALS, '0'));
}

/** Formats an amount of `scale` decimal places (6 for micros, 12 for picos) as a decimal string, trailing zeros trimmed to at least `minDecimals`. */
export function formatScaled(amount: bigint, scale: number, minDecimals = 2): string {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  const digits = abs.toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  let frac = digits.slice(digits.length - scale);
  while (frac.length > minDecimals && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${negative ? '-' : ''}${whole}${frac.length > 0 ? '.' + frac : ''}`;
}

/** `1234567n` micros -> `"1.234567"`; `1_500_000n` -> `"1.50"`. */
export function formatMicros(micros: bigint | number): string {
  return formatScaled(typeof micros === 'bigint' ? micros : BigInt(Math.round(micros)), 6);
}

/** Exact picos -> decimal string of the currency (up to 12 decimals). */
export function formatPicos(picos: bigint): string {
  return formatScaled(picos, 12);
}

/** Picos rounded UP to whole micros (budgets never under-charge). */
export function picosToMicrosCeil(picos: bigint): number {
  return Number((picos + PICOS_PER_MICRO - 1n) / PICOS_PER_MICRO);
}

/** ISO 4217-style currency codes (3 capital letters). */
export const CURRENCY_PATTERN = '^[A-Z]{3}$';
export const DEFAULT_CURRENCY = 'USD';
