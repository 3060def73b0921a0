/**
 * Doubly linked lists of table slots in one pair of index arrays (a slot is on at most one list),
 * with head and tail per list: O(1) append, unlink and move-to-tail, no allocation.
 */
export class SlotLists {
  readonly head: Int32Array;
  private readonly tail: Int32Array;
  private readonly prev: Int32Array;
  readonly next: Int32Array;

  constructor(lists: number, capacity: number) {
    this.head = new Int32Array(lists).fill(-1);
    this.tail = new Int32Array(lists).fill(-1);
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
  }

  pushTail(list: number, slot: number): void {
    const t = this.tail[list];
    this.prev[slot] = t;
    this.next[slot] = -1;
    if (t >= 0) this.next[t] = slot;
    else this.head[list] = slot;
    this.tail[list] = slot;
  }

  unlink(list: number, slot: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    if (p >= 0) this.next[p] = n;
    else this.head[list] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail[list] = p;
  }

  moveToTail(list: number, slot: number): void {
    if (this.tail[list] === slot) return;
    this.unlink(list, slot);
    this.pushTail(list, slot);
  }
}
