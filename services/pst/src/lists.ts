import { I32_NEXT, I32_PREV, REC_U32 } from "./layout.js";

/**
 * Doubly linked lists of table slots (a slot is on at most one list), with head and tail per
 * list: O(1) append, unlink and move-to-tail, no allocation. The links live in the connection
 * records (see layout.ts), beside the rest of what a segment touches.
 */
export class SlotLists {
  readonly head: Int32Array;
  private readonly tail: Int32Array;

  constructor(
    lists: number,
    /** The records, viewed as Int32Array. */
    private readonly links: Int32Array,
  ) {
    this.head = new Int32Array(lists).fill(-1);
    this.tail = new Int32Array(lists).fill(-1);
  }

  /** The slot after `slot` on its list, or -1. */
  next(slot: number): number {
    return this.links[slot * REC_U32 + I32_NEXT];
  }

  /** Links a slot that is on no list (a free one) to another. */
  setNext(slot: number, next: number): void {
    this.links[slot * REC_U32 + I32_NEXT] = next;
  }

  pushTail(list: number, slot: number): void {
    const l = this.links;
    const t = this.tail[list];
    l[slot * REC_U32 + I32_PREV] = t;
    l[slot * REC_U32 + I32_NEXT] = -1;
    if (t >= 0) l[t * REC_U32 + I32_NEXT] = slot;
    else this.head[list] = slot;
    this.tail[list] = slot;
  }

  unlink(list: number, slot: number): void {
    const l = this.links;
    const p = l[slot * REC_U32 + I32_PREV];
    const n = l[slot * REC_U32 + I32_NEXT];
    if (p >= 0) l[p * REC_U32 + I32_NEXT] = n;
    else this.head[list] = n;
    if (n >= 0) l[n * REC_U32 + I32_PREV] = p;
    else this.tail[list] = p;
  }

  moveToTail(list: number, slot: number): void {
    if (this.tail[list] === slot) return;
    this.unlink(list, slot);
    this.pushTail(list, slot);
  }
}
