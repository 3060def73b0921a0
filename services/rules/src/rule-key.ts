// The key of a rule's record in the store: "rule." and the rule's id in
// decimal. Ids are below 2^53 (see fnv53), so the decimal is plain digits.

const PREFIX = "rule.";
/** 2^53 has 16 digits: no id has more. */
const MAX_DIGITS = 16;

export function ruleKey(id: number): string {
  return `${PREFIX}${id}`;
}

/**
 * The id whose key `key` is (ruleKey(id) === key), NaN for any other text.
 * Read without writing the id back as text: a restore does this for a
 * million keys, and a number's text costs more than reading the digits.
 */
export function ruleKeyId(key: string): number {
  const n = key.length - PREFIX.length;
  if (n < 1 || n > MAX_DIGITS || !key.startsWith(PREFIX)) return Number.NaN;
  let id = 0;
  for (let i = PREFIX.length; i < key.length; i++) {
    const d = key.charCodeAt(i) - 48;
    if (d < 0 || d > 9 || (d === 0 && i === PREFIX.length && n > 1)) return Number.NaN;
    id = id * 10 + d;
  }
  // Every whole number up to here is exact, and writes back as its digits; past it the text would not.
  return id <= Number.MAX_SAFE_INTEGER ? id : Number.NaN;
}
