/** Symbols kept per connection: the first HEAD_LEN and, in a ring, the last RING_LEN (≥ the deepest context). */
export const HEAD_LEN = 16;
export const RING_LEN = 16;
export const RING_MASK = RING_LEN - 1;

/**
 * One connection's hot state is one 128-byte record (two cache lines) in one ArrayBuffer, read
 * through views of each element type: the table is random access over up to a million
 * connections, so each separate array a segment touches is a cache miss of its own (a
 * struct-of-arrays layout cost about 20 per segment; a record costs two). Offsets below are in
 * elements of the view named by the prefix (U32, F64, F32, I32, U16, U8), from the record's start
 * (slot · REC_U32 etc.). Only the head symbols, written once per connection, live outside.
 */
export const REC_BYTES = 128;
export const REC_U32 = REC_BYTES / 4;
export const REC_F64 = REC_BYTES / 8;
export const REC_U16 = REC_BYTES / 2;
export const REC_U8 = REC_BYTES;

/** Both ports (A's in the high half): bytes 0..3. */
export const U32_PORTS = 0;
/** Four address words of A (bytes 4..19), then of B (20..35); A is the lower (address, port) end. */
export const U32_ADDR_A = 1;
export const U32_ADDR_B = 5;
export const U32_PACKETS = 9;
export const F64_LAST_TS = 5;
export const F64_NLL_SUM = 6;
export const U32_NSYM = 14;
/** The first cache line holds the whole key, so a probe or a deletion's rehash reads only it. */
export const U8_FAMILY = 60;
export const U8_CLS = 61;
/** The slot's links in its shard's open or closed list (see SlotLists), or the free list's. */
export const I32_PREV = 16;
export const I32_NEXT = 17;
/** The handshake proof's acknowledgement range (see Handshakes): bytes 72..79. */
export const U32_ACKS = 18;
export const F64_FIRST_TS = 10;
export const U16_STATE = 44;
export const U16_SHARD = 45;
/** Largest running average after minSymbols symbols (float32, as before the records). */
export const F32_PEAK = 23;
/** The last RING_LEN symbols; while a connection has at most HEAD_LEN, also its head (see ConnRecords.headInto). */
export const U16_RING = 48;
