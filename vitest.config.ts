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
    include: [
      "proto/test/**/*.test.ts",
      "packages/*/src/**/*.test.ts",
      "packages/*/test/**/*.test.ts",
      "services/*/src/**/*.test.ts",
      "services/*/test/**/*.test.ts",
      "kmod/test/**/*.test.ts",
      "deploy/test/**/*.test.ts",
      "lab/test/**/*.test.ts",
    ],
    exclude: ["**/node_modules/**", "**/dist/**"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
