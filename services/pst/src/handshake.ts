import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "@vigil/frames";

/** Bits in the connection's state word (the low byte is the table's). */
const HS_OURS = 0x100;
const HS_VERIFIED = 0x200;

/**
 * Whether the remote end of a connection demonstrably receives what we send: it acknowledged our
 * initial sequence number, which only a host that got our SYN (or SYN-ACK) can know. A blind
 * spoofer, who sends from an address it does not own, never sees our ISN: its ACK may carry any
 * flags but not the right acknowledgement number (the real owner of the address answers our
 * SYN-ACK with a RST). Flags alone prove nothing.
 *
 * Per connection: the acknowledgement numbers that prove receipt, [our ISN + 1, the end of what
 * we have sent] in sequence space (modulo 2^32), side by side, and two bits in the table's state
 * word, all in the connection's record (the table is random access over a million connections,
 * so every further array a segment touched would be a cache miss). Once verified, nothing more is
 * read or written.
 *
 * What we send is trusted (the capture marks direction), except our RSTs: a RST answering a
 * forged ACK carries that ACK's number as its sequence number, so it must not widen the range.
 * The remote's sequence number is not checked: the spoofer chose it.
 */
export class Handshakes {
  /** Per slot at acks[slot · acksStride + acksOffset]: our ISN + 1, then the end of what we have sent. */
  private readonly acks: Uint32Array;
  private readonly acksStride: number;
  private readonly acksOffset: number;
  private readonly stateStride: number;
  private readonly stateOffset: number;

  /**
   * Standalone, `state` has one word per slot and the ranges an array of their own; the
   * connection table passes its records instead (see layout.ts), so a segment's handshake check
   * reads the cache lines the segment touches anyway.
   */
  constructor(
    capacity: number,
    private readonly state: Uint16Array,
    layout?: { stateStride: number; stateOffset: number; acks: Uint32Array; acksStride: number; acksOffset: number },
  ) {
    this.acks = layout?.acks ?? new Uint32Array(capacity * 2);
    this.acksStride = layout?.acksStride ?? 2;
    this.acksOffset = layout?.acksOffset ?? 0;
    this.stateStride = layout?.stateStride ?? 1;
    this.stateOffset = layout?.stateOffset ?? 0;
  }

  /** Bytes per connection (the two state bits live in the table's state word). */
  static readonly bytesPerConnection = 8;

  /** A segment we sent: a SYN (or SYN-ACK) sets our ISN; what follows extends the range the remote may acknowledge. */
  local(slot: number, flags: number, seq: number, payloadLen: number): void {
    const si = slot * this.stateStride + this.stateOffset;
    const st = this.state[si];
    if (st & HS_VERIFIED || flags & TCP_RST) return;
    const end = (seq + payloadLen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
    const i = slot * this.acksStride + this.acksOffset;
    if (flags & TCP_SYN) {
      const lo = (seq + 1) >>> 0;
      // A retransmitted SYN keeps what was sent since; a new ISN starts over.
      if ((st & HS_OURS) === 0 || this.acks[i] !== lo) {
        this.acks[i] = lo;
        this.acks[i + 1] = end;
        this.state[si] = st | HS_OURS;
      }
      return;
    }
    if ((st & HS_OURS) === 0) return;
    // Serial-number arithmetic (RFC 1982): later if ahead by less than 2^31.
    if (((end - this.acks[i + 1]) | 0) > 0 && ((end - this.acks[i]) | 0) >= 0) this.acks[i + 1] = end;
  }

  /**
   * A segment the remote end sent. A remote client proves receipt with an ACK (not a SYN, not a
   * RST) acknowledging our SYN-ACK; a remote server with its SYN-ACK (or any later ACK)
   * acknowledging our SYN.
   */
  remote(slot: number, flags: number, ack: number, remoteIsClient: boolean): void {
    const si = slot * this.stateStride + this.stateOffset;
    const st = this.state[si];
    if ((st & (HS_OURS | HS_VERIFIED)) !== HS_OURS) return;
    if ((flags & (TCP_ACK | TCP_RST)) !== TCP_ACK) return;
    if (remoteIsClient && flags & TCP_SYN) return;
    const i = slot * this.acksStride + this.acksOffset;
    const lo = this.acks[i];
    if (((ack - lo) >>> 0) <= ((this.acks[i + 1] - lo) >>> 0)) this.state[si] = st | HS_VERIFIED;
  }

  /** Whether the remote end acknowledged our initial sequence number. */
  verified(slot: number): boolean {
    return (this.state[slot * this.stateStride + this.stateOffset] & HS_VERIFIED) !== 0;
  }
}
