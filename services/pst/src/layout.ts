/** Symbols kept per connection: the first HEAD_LEN and, in a ring, the last RING_LEN (≥ the deepest context). */
export const HEAD_LEN = 16;
export const RING_LEN = 16;
export const RING_MASK = RING_LEN - 1;
