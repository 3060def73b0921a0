import { defineConfig } from 'vitest/config';

// The kernel tests boot a VM under TCG: one long beforeAll, then one `it`
// per case. Nothing runs in parallel (2 cores, one VM).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30 * 60_000,
    fileParallelism: false,
  },
});
