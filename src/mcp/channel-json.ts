/**
 * Messages other replicas publish on Redis channels are still input: each is read as a JSON object
 * only if it is short enough and well formed, never trusted to be.
 */

/** The message as a JSON object; undefined when longer than `maxChars`, not JSON, or not an object. */
export function channelObject(message: string, maxChars: number): Record<string, unknown> | undefined {
  if (message.length > maxChars) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return undefined;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
