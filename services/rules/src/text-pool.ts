/**
 * Equal texts held once. A million rules loaded from the store would each
 * hold their own copy of a reason, a detector name and a creator that most of
 * them share; through a pool they hold one. Bounded: past `max` distinct
 * texts, new ones are returned as they are and not pooled.
 */
export class TextPool {
  private readonly texts = new Map<string, string>();

  constructor(private readonly max = 16_384) {}

  get(text: string): string {
    const pooled = this.texts.get(text);
    if (pooled !== undefined) return pooled;
    if (this.texts.size < this.max) this.texts.set(text, text);
    return text;
  }
}
