/** ApiKey documents for the config files of integration tests. */

/**
 * One ApiKey `name` with the given spec lines (indented two spaces, without a trailing newline),
 * and, when `clearKey` is given, the Secret holding that client key (`<name>-key`, key `key`).
 * Without it the ApiKey has no client key of its own: an account (`accountOnly`) or a parent.
 * Starts with a document separator, so docs can be joined.
 */
export function apiKeyDoc(name: string, spec: string, clearKey?: string): string {
  const secret = clearKey ? `\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: ${name}-key }\nstringData: { key: ${clearKey} }\n` : '\n';
  return `---\napiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n${clearKey ? `  secretRef: { name: ${name}-key, key: key }\n` : ''}${spec}${secret}`;
}
