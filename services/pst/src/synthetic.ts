import { FAMILY_IPV4, FAMILY_IPV6, RecordWriter, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, craftPacket } from "@vigil/frames";

/** One segment of a synthetic conversation: who sends it and its flags. */
export interface Step {
  from: "c" | "s";
  flags: number;
  payload?: number;
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
}

/** Appends a conversation's frames (direction unknown, as from a foreign capture) to a writer. */
export function writeConversation(w: RecordWriter, c: ConversationSpec): number {
  const v6 = c.client.includes(":");
  let ts = c.startTs;
  for (const st of c.steps) {
    const fromClient = st.from === "c";
    const data = craftPacket({
      src: fromClient ? c.client : c.server,
      dst: fromClient ? c.server : c.client,
      proto: "tcp",
      srcPort: fromClient ? c.clientPort : c.serverPort,
      dstPort: fromClient ? c.serverPort : c.clientPort,
      flags: st.flags,
      payloadLen: st.payload ?? 0,
    });
    w.append({ tsNs: BigInt(Math.round(ts * 1e6)) * 1000n, ifindex: 0, direction: 0, family: v6 ? FAMILY_IPV6 : FAMILY_IPV4, flags: 0, data });
    ts += c.gap ?? 0.001;
  }
  return ts;
}
