import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "@vigil/frames";

const HS_OURS = 1;
const HS_VERIFIED = 2;

/**
 * Whether the remote end of a connection demonstrably receives what we send: it acknowledged our
 * initial sequence number, which only a host that got our SYN (or SYN-ACK) can know. A blind
 * spoofer, who sends from an address it does not own, never sees our ISN: its ACK may carry any
 * flags but not the right acknowledgement number (the real owner of the address answers our
 * SYN-ACK with a RST). Flags alone prove nothing.
 *
 * Per connection: the acknowledgement numbers that prove receipt, [our ISN + 1, the end of what
 * we have sent] in sequence space (modulo 2^32), and two bits. 9 bytes, struct-of-arrays like the
 * connection table it belongs to.
 *
 * What we send is trusted (the capture marks direction), except our RSTs: a RST answering a
 * forged ACK carries that ACK's number as its sequence number, so it must not widen the range.
 * The remote's sequence number is not checked: the spoofer chose it.
 */
export class Handshakes {
  private readonly ackLo: Uint32Array;
  private readonly ackHi: Uint32Array;
  private readonly bits: Uint8Array;

  constructor(capacity: number) {
    this.ackLo = new Uint32Array(capacity);
    this.ackHi = new Uint32Array(capacity);
    this.bits = new Uint8Array(capacity);
  }

  static readonly bytesPerConnection = 9;

  /** A new connection in the slot. */
  reset(slot: number): void {
    this.bits[slot] = 0;
  }

  /** A segment we sent: a SYN (or SYN-ACK) sets our ISN; what follows extends the range the remote may acknowledge. */
  local(slot: number, flags: number, seq: number, payloadLen: number): void {
    if (flags & TCP_RST) return;
    const end = (seq + payloadLen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
    if (flags & TCP_SYN) {
      const lo = (seq + 1) >>> 0;
      // A retransmitted SYN keeps what was sent since; a new ISN starts over.
      if ((this.bits[slot] & HS_OURS) === 0 || this.ackLo[slot] !== lo) {
        this.ackLo[slot] = lo;
        this.ackHi[slot] = end;
        this.bits[slot] |= HS_OURS;
      }
      return;
    }
    if ((this.bits[slot] & HS_OURS) === 0) return;
    // Serial-number arithmetic (RFC 1982): later if ahead by less than 2^31.
    if (((end - this.ackHi[slot]) | 0) > 0 && ((end - this.ackLo[slot]) | 0) >= 0) this.ackHi[slot] = end;
  }

  /**
   * A segment the remote end sent. A remote client proves receipt with an ACK (not a SYN, not a
   * RST) acknowledging our SYN-ACK; a remote server with its SYN-ACK (or any later ACK)
   * acknowledging our SYN.
   */
  remote(slot: number, flags: number, ack: number, remoteIsClient: boolean): void {
    const bits = this.bits[slot];
    if ((bits & (HS_OURS | HS_VERIFIED)) !== HS_OURS) return;
    if ((flags & (TCP_ACK | TCP_RST)) !== TCP_ACK) return;
    if (remoteIsClient && flags & TCP_SYN) return;
    const lo = this.ackLo[slot];
    if (((ack - lo) >>> 0) <= ((this.ackHi[slot] - lo) >>> 0)) this.bits[slot] = bits | HS_VERIFIED;
  }

  /** Whether the remote end acknowledged our initial sequence number. */
  verified(slot: number): boolean {
    return (this.bits[slot] & HS_VERIFIED) !== 0;
  }
}
