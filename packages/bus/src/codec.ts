import type { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  EndOfStream,
  Feedback,
  FrameBatch,
  Heartbeat,
  RuleEvent,
  ScoreBatch,
  Verdict,
} from "@vigil/proto";
import { decodeFrameBatch } from "./frame-batch.js";

interface MessageFns<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: Uint8Array): T;
  fromPartial(object: never): T;
}

/** A message on the bus could not be decoded: counted by the receiver, never fatal. */
export class DecodeError extends Error {
  readonly code = "VIGIL_ERR_DECODE";
}

export interface Codec<T> {
  readonly name: string;
  encode(message: T): Uint8Array;
  /** Throws DecodeError naming the message type and the subject. */
  decode(data: Uint8Array, subject?: string): T;
}

function codec<T>(name: string, fns: MessageFns<T>): Codec<T> {
  return {
    name,
    encode: (message) => fns.encode(message).finish(),
    decode(data, subject) {
      try {
        return fns.decode(data);
      } catch (err) {
        throw new DecodeError(`malformed ${name} (${data.byteLength} bytes)${subject ? ` on ${subject}` : ""}: ${(err as Error).message}`);
      }
    },
  };
}

export const codecs = {
  // The hot path: records stay a view of the message instead of a copy.
  frameBatch: codec("FrameBatch", { ...FrameBatch, decode: decodeFrameBatch }),
  verdict: codec("Verdict", Verdict),
  feedback: codec("Feedback", Feedback),
  ruleEvent: codec("RuleEvent", RuleEvent),
  heartbeat: codec("Heartbeat", Heartbeat),
  endOfStream: codec("EndOfStream", EndOfStream),
  scoreBatch: codec("ScoreBatch", ScoreBatch),
} as const;
