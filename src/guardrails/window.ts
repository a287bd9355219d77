/**
 * The streaming window: streamed text (one choice of a chat completion stream) is checked as it
 * arrives, but the last `window - 1` normalised characters are held back, because they could be the
 * start of a match that the next chunk completes. Text before that point cannot be part of an
 * incomplete match (no rule matches more than `window` characters), so it is released, masked where
 * needed. A match that is complete but could still grow (an e-mail address at the very end) is held
 * whole. State is bounded: at most `window - 1` characters plus one chunk.
 *
 * Latency: the client sees each character about `window - 1` characters (roughly window/4 tokens)
 * later than without the guardrail; the held text is released when the choice finishes.
 */
import type { CompiledGuardrail } from './compile.js';
import { normalize, originalIndex } from './normalize.js';
import { findAll, maskText, type Finding } from './scan.js';

/** What a push released, or the finding that blocks the stream. */
export type WindowResult = { readonly blocked: Finding } | { readonly blocked: undefined; readonly text: string };

export class StreamWindow {
  private held = '';
  private readonly findings: Finding[] = [];

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly window: number,
    /** Called for every finding in released text (and for the blocking one). */
    private readonly report: (f: Finding) => void,
  ) {}

  /** Characters held back right now (for tests and metrics). */
  get heldLength(): number {
    return this.held.length;
  }

  /** Adds streamed text; returns what can be released now. */
  push(text: string): WindowResult {
    this.held += text;
    return this.release(false);
  }

  /** The stream (this choice) ended: checks and releases everything held. */
  flush(): WindowResult {
    return this.release(true);
  }

  /** `push(text)` then `flush()`, with one scan instead of two. */
  finish(text: string): WindowResult {
    this.held += text;
    return this.release(true);
  }

  private release(all: boolean): WindowResult {
    const held = this.held;
    if (held.length === 0) return { blocked: undefined, text: '' };
    const norm = normalize(held);
    const findings = this.findings;
    findings.length = 0;
    findAll(norm.text, this.guardrails, findings);
    for (const f of findings) {
      if (f.rule.action === 'block') {
        this.report(f);
        this.held = '';
        return { blocked: f };
      }
    }
    const n = norm.text.length;
    let cut = all ? n : Math.max(0, n - (this.window - 1));
    // Never release part of a match: it would be masked now and continue unmasked later.
    for (let moved = true; moved; ) {
      moved = false;
      for (const f of findings) {
        if (f.start < cut && f.end > cut) {
          cut = f.start;
          moved = true;
        }
      }
    }
    const limit = cut >= n ? held.length : originalIndex(norm, cut);
    if (limit === 0) return { blocked: undefined, text: '' };
    for (const f of findings) if (f.end <= cut) this.report(f);
    const text = maskText(held, norm, findings, limit);
    this.held = held.slice(limit);
    return { blocked: undefined, text };
  }
}
