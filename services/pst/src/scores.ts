import { ScorePublisher, type NatsConnection } from "@vigil/bus";
import { formatAddressWords } from "@vigil/frames";
import type { ScoreSample } from "@vigil/proto";
import type { ConnTable } from "./conntrack.js";
import type { PstModel } from "./model.js";

/** A judged connection's score as kept in the reservoir: addresses still as words. */
export interface RawScore {
  ts: number;
  score: number;
  threshold: number;
  model: string;
  serviceClass: string;
  family: number;
  /** Client address words then server address words. */
  words: ArrayLike<number>;
  serverPort: number;
}

/** "client -> server:port class", formatted only for the samples that are published. */
export function formatScore(r: RawScore): ScoreSample {
  return {
    ts: r.ts,
    score: r.score,
    threshold: r.threshold,
    key: `${formatAddressWords(r.words, 0, r.family)} -> ${formatAddressWords(r.words, 4, r.family)}:${r.serverPort} ${r.serviceClass}`,
    model: r.model,
    bmu: -1,
  };
}

export type PstScorePublisher = ScorePublisher<RawScore>;

export function createScorePublisher(nc: NatsConnection, instance: string): PstScorePublisher {
  return new ScorePublisher<RawScore>(nc, "pst", instance, { format: formatScore });
}

/**
 * Feeds a judged connection's score to the live score stream. A spoofed flood judges hundreds of
 * thousands of connections a second, so the connection's fields are read only when the reservoir
 * keeps the sample.
 */
export function sampleScore(pub: PstScorePublisher, t: ConnTable, slot: number, score: number, model: PstModel, serviceClass: string): void {
  const at = pub.reserve();
  if (at < 0) return;
  pub.fill(at, {
    ts: t.lastTsOf(slot),
    score,
    threshold: model.threshold.value,
    model: model.id,
    serviceClass,
    family: t.familyOf(slot),
    words: t.endpointWords(slot),
    serverPort: t.port(slot, false),
  });
}
