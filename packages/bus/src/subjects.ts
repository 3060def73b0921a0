/** Every subject Vigil uses, in one place. */
export const subjects = {
  /** Frame batches of one shard (FrameBatch). */
  frames: (shard: number) => `vigil.frames.${shard}`,
  framesAll: "vigil.frames.*",
  /** A detector's verdicts (Verdict). */
  verdicts: (detector: string) => `vigil.verdicts.${detector}`,
  verdictsAll: "vigil.verdicts.>",
  /** People's corrections, for the detectors to learn from (Feedback). */
  feedback: "vigil.feedback",
  /** Rule changes made by the rules service (RuleEvent). */
  ruleEvents: "vigil.events.rules",
  /** Liveness and shard ownership of every instance (Heartbeat). */
  heartbeat: (service: string) => `vigil.heartbeat.${service}`,
  heartbeatAll: "vigil.heartbeat.>",
  /** Every score a detector computed, anomalous or not, batched about once a second (ScoreBatch). */
  scores: (detector: string) => `vigil.scores.${detector}`,
  scoresAll: "vigil.scores.>",
  /** Request-reply: a detector instance answers with its model's JSON export (empty request). */
  models: (detector: string) => `vigil.models.${detector}`,
  /** A stage has passed on the end of a finite stream (EndOfStream). */
  endOfStream: (stage: string) => `vigil.eos.${stage}`,
  endOfStreamAll: "vigil.eos.>",
} as const;
