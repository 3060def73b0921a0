// The test-only ring producer addon (test/native, built by
// scripts/build-addon.mjs next to the production addon but never part of it):
// plays the kernel's side of the ring so the reader is tested without the module.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface RingProducerOptions {
  rings?: number;
  slots?: number;
  snaplen?: number;
  startIndex?: number;
}

export interface RingProducer {
  produce(ring: number, records: Uint8Array): { written: number; dropped: number };
  indexes(ring: number): { producer: number; consumer: number; drops: number };
  info(): {
    ringCount: number;
    slotsPerRing: number;
    slotSize: number;
    snaplen: number;
    pageSize: number;
    ringOffset: number;
    ringStride: number;
    mapSize: number;
  };
  close(): void;
}

export const ringProducerAddonPath = join(dirname(fileURLToPath(import.meta.url)), "../native/build/Release/vigil_ring_producer.node");

/** Creates a ring file at `path` and a producer writing into it. */
export function createRingProducer(path: string, options: RingProducerOptions): RingProducer {
  if (!existsSync(ringProducerAddonPath))
    throw new Error(`the test ring producer addon is not built (${ringProducerAddonPath} missing): run node scripts/build.mjs`);
  const addon = createRequire(import.meta.url)(ringProducerAddonPath) as { RingProducer: new (path: string, options: RingProducerOptions) => RingProducer };
  return new addon.RingProducer(path, options);
}
