/**
 * Tool-call arguments: JSON text a model writes (OpenAI `function.arguments`, streamed as argument
 * deltas; Anthropic `tool_use.input`, streamed as `input_json_delta`; Responses `function_call`
 * arguments). The agent parses and executes them, so masking must never break the JSON.
 *
 * ArgumentsWindow reads the text with a small incremental JSON lexer:
 * - the decoded contents of each string literal (keys and values) go through a StreamWindow, like
 *   streamed content; what the window releases is re-encoded as JSON string content
 *   (JSON.stringify without the quotes), so a mask, whatever its characters, stays inside the
 *   string, and an escape sequence (`\n`, `\u00e9`) is never cut: matching sees the decoded text.
 *   A string's window is flushed at its closing quote, before the quote and anything after it is
 *   released, so the bytes the client concatenates are always a prefix of valid JSON;
 * - number tokens (and true/false/null) are held until a `,:}]` shows they ended, and checked
 *   whole; a masked number becomes a JSON string of its masked text (a card written as a number);
 * - structure (`{}[],:` and whitespace) passes unchanged.
 * Text that cannot be JSON (a character no JSON has outside a string, a value right after another
 * value) switches the rest of the text, from the held number on, to a plain StreamWindow over the
 * raw text (`+44 20 7946 0958` or `0044 20 7946 0958` as plain arguments are still one match). Bounded: one window, one token of at most
 * MAX_TOKEN characters and at most MAX_TOKEN characters of whitespace after it, one escape sequence.
 *
 * Semantics (streamed or whole, identical): each string value, key and number of the arguments is
 * checked on its own, decoded; a match cannot span two values. checkArguments() is the whole-text
 * form: arguments that are not JSON at all are checked and masked as raw text.
 */
import type { CompiledGuardrail } from './compile.js';
import { checkText, type Finding } from './scan.js';
import { StreamWindow, type WindowResult } from './window.js';

/** A number token longer than this is not JSON a model writes: the rest is checked as raw text. */
const MAX_TOKEN = 512;

/** The first character of a JSON number (`-`, a digit) or literal (true, false, null). */
function startsToken(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e;
}

const LITERALS = ['true', 'false', 'null'];

/** Whether `c` continues `token` as JSON: number characters after a number, the literal's next letter. */
function continuesToken(token: string, c: number): boolean {
  const first = token.charCodeAt(0);
  if (first === 0x74 || first === 0x66 || first === 0x6e) {
    const next = token + String.fromCharCode(c);
    return LITERALS.some((l) => l.startsWith(next));
  }
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** JSON string content for `text` (no quotes). */
function encode(text: string): string {
  if (text.length === 0) return '';
  const s = JSON.stringify(text);
  return s.slice(1, -1);
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const HEX4 = /^[0-9a-fA-F]{4}$/;
const STRING_STOP = /["\\]/g;

/** A complete escape sequence's character; undefined while incomplete; null when invalid. */
function decodeEscape(esc: string): string | undefined | null {
  if (esc.length < 2) return undefined;
  const k = esc[1] as string;
  if (k !== 'u') return SIMPLE_ESCAPES[k] ?? null;
  if (esc.length < 6) return undefined;
  const hex = esc.slice(2, 6);
  return HEX4.test(hex) ? String.fromCharCode(parseInt(hex, 16)) : null;
}

/** The streaming window for one tool call's arguments (see the module comment). */
export class ArgumentsWindow {
  private raw: StreamWindow | undefined;
  private inString = false;
  /** A partial escape sequence (starting with a backslash) inside a string. */
  private esc = '';
  /** A number or literal outside strings, and whitespace after it (held until a `,:}]` confirms it ended). */
  private token = '';
  private ws = '';
  /** A value just ended (a string, `}` or `]`): only `,:}]` or whitespace may follow in JSON. */
  private afterValue = false;
  private readonly strings: StreamWindow;

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly window: number,
    private readonly report: (f: Finding) => void,
  ) {
    this.strings = new StreamWindow(guardrails, window, report);
  }

  /** Characters held back (for tests). */
  get heldLength(): number {
    return this.raw ? this.raw.heldLength : this.strings.heldLength + this.token.length + this.ws.length + this.esc.length;
  }

  /** True once the text turned out not to be JSON (checked as raw text since). */
  get isRaw(): boolean {
    return this.raw !== undefined;
  }

  /** Adds an arguments delta; returns the bytes that can be released now. */
  push(text: string): WindowResult {
    if (this.raw) return this.raw.push(text);
    let out = '';
    /** Decoded text of the current string in this delta, not yet given to the window (one scan per delta). */
    let dec = '';
    let i = 0;
    const n = text.length;
    while (i < n) {
      if (this.inString) {
        if (this.esc.length > 0) {
          this.esc += text[i];
          i++;
          const d = decodeEscape(this.esc);
          if (d === undefined) continue;
          if (d === null) return this.toRaw(out, dec, this.esc + text.slice(i));
          this.esc = '';
          dec += d;
          continue;
        }
        STRING_STOP.lastIndex = i;
        const m = STRING_STOP.exec(text);
        const stop = m ? m.index : n;
        dec += text.slice(i, stop);
        if (stop === n) break;
        i = stop + 1;
        if (text.charCodeAt(stop) === 0x5c) {
          this.esc = '\\'; // an escape sequence, maybe completed by the next delta
          continue;
        }
        // The closing quote: the whole string is checked and released before the quote.
        const r = this.strings.finish(dec);
        dec = '';
        if (r.blocked) return r;
        out += encode(r.text) + '"';
        this.inString = false;
        this.afterValue = true;
        continue;
      }
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        // Whitespace after a number is held with it until what follows shows the text is still JSON;
        // a run longer than a token (a model stuck writing newlines) releases the checked number and
        // the whitespace, so nothing is held without bound.
        if (this.token.length > 0) {
          this.ws += text[i];
          if (this.ws.length > MAX_TOKEN) {
            const t = this.endToken();
            if (typeof t !== 'string') return t;
            out += t + this.ws;
            this.ws = '';
            this.afterValue = true;
          }
        } else out += text[i];
        i++;
      } else if (c === 0x2c || c === 0x3a || c === 0x7d || c === 0x5d) {
        // , : } ]
        const t = this.endToken();
        if (typeof t !== 'string') return t;
        out += t + this.ws + text[i];
        this.ws = '';
        this.afterValue = c === 0x7d || c === 0x5d;
        i++;
      } else if (this.token.length > 0 && this.ws.length === 0 && this.token.length < MAX_TOKEN && continuesToken(this.token, c)) {
        this.token += text[i];
        i++;
      } else if (this.token.length > 0 || this.afterValue) {
        // A value right after another one (or a number running into a letter): not JSON.
        return this.toRaw(out, '', this.token + this.ws + text.slice(i));
      } else if (c === 0x22) {
        out += '"';
        this.inString = true;
        i++;
      } else if (c === 0x7b || c === 0x5b) {
        out += text[i];
        i++;
      } else if (startsToken(c)) {
        this.token = text[i] as string;
        i++;
      } else {
        return this.toRaw(out, '', text.slice(i));
      }
    }
    if (dec.length > 0) {
      const r = this.strings.push(dec);
      if (r.blocked) return r;
      out += encode(r.text);
    }
    return { blocked: undefined, text: out };
  }

  /** The arguments ended: everything held is checked and released. */
  flush(): WindowResult {
    if (this.raw) return this.raw.flush();
    let out = '';
    if (this.inString) {
      // Cut off inside a string (a truncated answer): what was held, then any partial escape as is.
      const r = this.strings.flush();
      if (r.blocked) return r;
      out += encode(r.text) + this.esc;
      this.esc = '';
    }
    const t = this.endToken();
    if (typeof t !== 'string') return t;
    const ws = this.ws;
    this.ws = '';
    return { blocked: undefined, text: out + t + ws };
  }

  /** The pending number/literal token, checked whole ('' when none). */
  private endToken(): string | { readonly blocked: Finding } {
    const token = this.token;
    if (token.length === 0) return '';
    this.token = '';
    const v = checkText(token, this.guardrails);
    if (v.blocked) {
      this.report(v.blocked);
      return { blocked: v.blocked };
    }
    for (const f of v.findings) if (f.rule.action !== 'block') this.report(f);
    return v.text === token ? token : JSON.stringify(v.text);
  }

  /**
   * Not JSON: the current string (held text and `dec`, its decoded rest in this delta) is checked
   * alone and released; `rest` (raw) and everything after it go through a raw window.
   */
  private toRaw(out: string, dec: string, rest: string): WindowResult {
    this.token = '';
    this.ws = '';
    this.esc = '';
    if (this.inString) {
      const r = this.strings.finish(dec);
      if (r.blocked) return r;
      out += encode(r.text);
    }
    this.raw = new StreamWindow(this.guardrails, this.window, this.report);
    const r = this.raw.push(rest);
    if (r.blocked) return r;
    return { blocked: undefined, text: out + r.text };
  }
}

/**
 * Whole tool-call arguments (a non-streamed answer, a request's earlier tool calls): masked inside
 * JSON strings (and numbers), as the stream would; arguments that are not JSON are checked as raw
 * text. Findings are reported once.
 */
export function checkArguments(text: string, guardrails: readonly CompiledGuardrail[], report: (f: Finding) => void): WindowResult {
  if (text.length === 0) return { blocked: undefined, text };
  const findings: Finding[] = [];
  const w = new ArgumentsWindow(guardrails, Number.MAX_SAFE_INTEGER, (f) => findings.push(f));
  const a = w.push(text);
  const b = a.blocked ? a : w.flush();
  const out = a.blocked || b.blocked ? undefined : a.text + b.text;
  if (w.isRaw) {
    const v = checkText(text, guardrails);
    for (const f of v.findings) if (f.rule.action !== 'block') report(f);
    if (v.blocked) {
      report(v.blocked);
      return { blocked: v.blocked };
    }
    return { blocked: undefined, text: v.text };
  }
  for (const f of findings) report(f);
  if (b.blocked || out === undefined) return b;
  return { blocked: undefined, text: out === text ? text : out };
}
