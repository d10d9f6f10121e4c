import { defineConfig } from "vitest/config";

/**
 * `npm run test:slurm`: tests against real Slurm daemons (munged, slurmctld, slurmd -Z in network
 * namespaces). They need root, slurm-wlm and munge, share the machine's network namespaces, and take
 * minutes, so files run one after another with long timeouts.
 */
export default defineConfig({
  test: {
    include: ["test/slurm/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
