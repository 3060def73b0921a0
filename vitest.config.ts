import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources in tests.
    conditions: ["vigil-source"],
  },
  ssr: {
    resolve: { conditions: ["vigil-source"], externalConditions: ["vigil-source"] },
  },
  test: {
    include: ["{packages,services}/*/test/**/*.test.ts", "kmod/test/**/*.test.ts", "{deploy,lab}/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
