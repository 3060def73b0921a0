import { FAMILY_IPV4, FAMILY_IPV6, RecordWriter, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, craftPacket } from "@vigil/frames";

/** One segment of a synthetic conversation: who sends it and its flags. */
export interface Step {
  from: "c" | "s";
  flags: number;
  payload?: number;
  /** Sequence and acknowledgement numbers, for forged segments; by default what an honest TCP sends. */
  seq?: number;
  ack?: number;
}

export const S = TCP_SYN;
export const A = TCP_ACK;
export const P = TCP_PSH;
export const F = TCP_FIN;
export const R = TCP_RST;

/** A benign web-like exchange: handshake, request, response, client-initiated close. */
export function benignExchange(responseSegments = 3): Step[] {
  const steps: Step[] = [
    { from: "c", flags: S },
    { from: "s", flags: S | A },
    { from: "c", flags: A },
    { from: "c", flags: P | A, payload: 300 },
    { from: "s", flags: A },
  ];
  for (let i = 0; i < responseSegments; i++) steps.push({ from: "s", flags: i === responseSegments - 1 ? P | A : A, payload: 1200 });
  steps.push({ from: "c", flags: A }, { from: "c", flags: F | A }, { from: "s", flags: F | A }, { from: "c", flags: A });
  return steps;
}

export interface ConversationSpec {
  client: string;
  server: string;
  clientPort: number;
  serverPort: number;
  steps: Step[];
  startTs: number;
  /** Seconds between segments. */
  gap?: number;
  /** Initial sequence numbers; by default derived from the ports. */
  clientIsn?: number;
  serverIsn?: number;
  /** Capture direction of the client's segments (the server's get the opposite); unknown by default. */
  clientDirection?: number;
  /** Record flags of every frame (FRAME_F_DROPPED: a drop rule matched). */
  frameFlags?: number;
}

/** Appends a conversation's frames (direction unknown, as from a foreign capture, unless given) to a writer. */
export function writeConversation(w: RecordWriter, c: ConversationSpec): number {
  const v6 = c.client.includes(":");
  let ts = c.startTs;
  // Each end's next sequence number, as an honest TCP keeps it: a SYN or FIN takes one, payload its length.
  let clientNext = (c.clientIsn ?? Math.imul(c.clientPort ^ 0x5bd1e995, 0x9e3779b1)) >>> 0;
  let serverNext = (c.serverIsn ?? Math.imul(c.serverPort ^ c.clientPort ^ 0x1b873593, 0x85ebca6b)) >>> 0;
  const clientDir = c.clientDirection ?? 0;
  const serverDir = clientDir === 0 ? 0 : 3 - clientDir;
  for (const st of c.steps) {
    const fromClient = st.from === "c";
    const payload = st.payload ?? 0;
    const ownNext = fromClient ? clientNext : serverNext;
    const data = craftPacket({
      src: fromClient ? c.client : c.server,
      dst: fromClient ? c.server : c.client,
      proto: "tcp",
      srcPort: fromClient ? c.clientPort : c.serverPort,
      dstPort: fromClient ? c.serverPort : c.clientPort,
      flags: st.flags,
      seq: st.seq ?? ownNext,
      ack: st.ack ?? (st.flags & TCP_ACK ? (fromClient ? serverNext : clientNext) : 0),
      payloadLen: payload,
    });
    const used = payload + (st.flags & TCP_SYN ? 1 : 0) + (st.flags & TCP_FIN ? 1 : 0);
    if (st.seq === undefined && !(st.flags & TCP_RST)) {
      if (fromClient) clientNext = (clientNext + used) >>> 0;
      else serverNext = (serverNext + used) >>> 0;
    }
    w.append({ tsNs: BigInt(Math.round(ts * 1e6)) * 1000n, ifindex: 0, direction: fromClient ? clientDir : serverDir, family: v6 ? FAMILY_IPV6 : FAMILY_IPV4, flags: c.frameFlags ?? 0, data });
    ts += c.gap ?? 0.001;
  }
  return ts;
}
