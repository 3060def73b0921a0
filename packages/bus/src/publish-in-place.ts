import type { NatsConnection } from "@nats-io/transport-node";
import { clientInternals } from "./client-internals.js";

const CRLF = Buffer.from("\r\n", "ascii");
/** What nats.js accepts as a subject to publish on: not empty, no whitespace. */
const VALID_SUBJECT = /^\S+$/;

/** Bytes of room publishInPlace() needs before a payload of at most maxPayload bytes on this subject. */
export function publishHeadroom(subject: string, maxPayload = 64 << 20): number {
  return `PUB ${subject} ${maxPayload}\r\n`.length;
}

/**
 * nc.publish() without the copy. nats.js queues the protocol line, the
 * payload and CRLF as three chunks and, before the socket write, packs every
 * queued chunk into one new buffer: under a full-speed replay that copy (and
 * the allocation) was the largest item of the capture process's profile. Here the protocol
 * line is written into the free bytes before the payload (`headroom`, as
 * publishHeadroom() tells) and the message goes to the socket as it is, after
 * whatever the client had queued, so the order on the wire is kept.
 *
 * The payload's memory then belongs to the socket until written: the caller
 * must not reuse it. Falls back to nc.publish() (which copies) when there is
 * not enough headroom, the client is between connections (it queues what is
 * published then), or its internals are not as expected.
 */
export function publishInPlace(nc: NatsConnection, subject: string, payload: Buffer, headroom: number): void {
  const p = clientInternals(nc);
  const socket = p?.transport?.socket;
  const len = payload.byteLength;
  const line = `PUB ${subject} ${len}\r\n`;
  const maxPayload = p?.info?.max_payload;
  if (
    !p ||
    !socket ||
    nc.isClosed() ||
    p.noMorePublishing !== false ||
    !VALID_SUBJECT.test(subject) ||
    socket.destroyed !== false ||
    line.length > headroom ||
    !p.connected ||
    !p.infoReceived ||
    p.transport!.isClosed !== false ||
    typeof p.flushPending !== "function" ||
    typeof maxPayload !== "number" ||
    len > maxPayload
  ) {
    // nc.publish() also throws the client's own errors: closed or draining, a bad subject, a payload over max_payload.
    nc.publish(subject, payload);
    return;
  }
  const start = payload.byteOffset - line.length;
  const frame = Buffer.from(payload.buffer, start, line.length + len);
  frame.write(line, 0, "latin1");
  p.flushPending();
  p.outBytes = (p.outBytes ?? 0) + len;
  p.outMsgs = (p.outMsgs ?? 0) + 1;
  // One writev for the frame and its CRLF; the chunks are handed over, not copied.
  socket.cork();
  socket.write(frame);
  socket.write(CRLF);
  socket.uncork();
}
