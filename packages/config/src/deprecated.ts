const warned = new Set<string>();

/**
 * Says once per process, on stderr, that a configuration key has a new name.
 * The old key keeps working, so existing files need not change at once.
 */
export function warnRenamedKey(oldKey: string, newKey: string): void {
  if (warned.has(oldKey)) return;
  warned.add(oldKey);
  process.emitWarning(`config: ${oldKey} is deprecated, use ${newKey} (the old name still works)`, {
    type: "DeprecationWarning",
    code: "VIGIL_DEP_CONFIG_KEY",
  });
}
