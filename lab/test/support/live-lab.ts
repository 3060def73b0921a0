import { existsSync } from "node:fs";
import { join } from "node:path";
import { netnsUnavailableReason, toolMissing } from "@vigil/testing";
import { LAB_DIR } from "../../src/lab.js";
import { Pipeline } from "../../src/pipeline.js";

/**
 * Why a live lab test cannot run here, or null: namespaces, its scenario script built
 * (`lab/dist/<main>`), the services it starts built, and the tools its traffic needs.
 */
export function liveLabSkipReason(main: string, services: readonly ("rules" | "pst" | "som")[], tools: readonly string[]): string | null {
  const ns = netnsUnavailableReason();
  if (ns) return ns;
  if (!existsSync(join(LAB_DIR, "dist", main))) return `lab/dist/${main} is not built (node scripts/build.mjs)`;
  const missing = Pipeline.missingServices([...services]);
  if (missing.length) return `not built: ${missing.join(", ")} (node scripts/build.mjs)`;
  for (const tool of tools) {
    const why = toolMissing("sh", "", ["-c", `command -v ${tool}`]);
    if (why) return `${tool} is not installed`;
  }
  return null;
}
