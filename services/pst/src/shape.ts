import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "@vigil/frames";
import { SYM_END } from "@vigil/models";

// The attack taxonomy: what one connection looked like (its shape), and what a window's shapes make of its source.

/** What an anomalous connection looked like, from its first symbols; decides the verdict's label. */
export const enum Shape {
  HalfOpen = 0,
  Refused = 1,
  SynProbe = 2,
  ConnectProbe = 3,
  Session = 4,
  Backscatter = 5,
  RstOnly = 6,
  Xmas = 7,
  Null = 8,
  Fin = 9,
  Midstream = 10,
}
export const SHAPE_COUNT = 11;

export function shapeOf(head: ArrayLike<number>, off = 0, len = head.length): Shape {
  const first = head[off];
  const dir = first >> 8;
  const f = first & 0xff;
  if (dir === 0 && (f & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) {
    let synAck = false;
    let reply = false;
    let clientAck = false;
    let clientData = false;
    for (let i = 1; i < len; i++) {
      const s = head[off + i];
      if (s === SYM_END) break;
      const sf = s & 0xff;
      if (s >> 8 === 1) {
        reply = true;
        if ((sf & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) synAck = true;
        else if (sf & TCP_RST && !synAck) return Shape.Refused;
      } else {
        if (sf & TCP_RST && synAck && !clientAck) return Shape.SynProbe;
        if (sf & TCP_ACK && synAck) clientAck = true;
        if (sf & TCP_PSH) clientData = true;
      }
    }
    if (!reply) return Shape.HalfOpen;
    if (synAck && !clientAck) return Shape.HalfOpen;
    return clientData ? Shape.Session : Shape.ConnectProbe;
  }
  if ((f & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) return Shape.Backscatter;
  if (f & TCP_RST) return Shape.RstOnly;
  if (dir === 0 && (f & (TCP_SYN | TCP_ACK)) === 0) {
    if (f === 0) return Shape.Null;
    if ((f & (TCP_FIN | TCP_PSH | TCP_URG)) === (TCP_FIN | TCP_PSH | TCP_URG)) return Shape.Xmas;
    if (f & TCP_FIN) return Shape.Fin;
    return Shape.Xmas;
  }
  return Shape.Midstream;
}

export function labelFor(shapes: ArrayLike<number>, distinctPorts: number, connections: number): string {
  let best = 0;
  for (let i = 1; i < SHAPE_COUNT; i++) if (shapes[i] > shapes[best]) best = i;
  const manyPorts = distinctPorts > 5;
  switch (best as Shape) {
    case Shape.HalfOpen:
    case Shape.Refused:
    case Shape.SynProbe:
    case Shape.ConnectProbe:
      if (manyPorts) return shapes[Shape.ConnectProbe] > shapes[Shape.SynProbe] ? "connect-scan" : "syn-scan";
      if (best === Shape.ConnectProbe) return "brute-force";
      return connections >= 100 ? "syn-flood" : "half-open";
    case Shape.Session:
      return manyPorts ? "connect-scan" : "brute-force";
    case Shape.Backscatter:
      return "syn-ack-reflection";
    case Shape.RstOnly:
      return "rst-flood";
    case Shape.Xmas:
      return "xmas-scan";
    case Shape.Null:
      return "null-scan";
    case Shape.Fin:
      return "fin-scan";
    default:
      return "anomalous-tcp";
  }
}
