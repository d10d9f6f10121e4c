import { ValidationError } from "../lib/core/validation.js";
import { SlurmUnavailableError } from "../scheduler-plugins/slurm/errors.js";
import { applyNodeStorage } from "../scheduler-plugins/slurm/node-storage.js";

/**
 * The answer to set-node-storage (scheduler-plugins/slurm/node-storage.ts), shared by the HTTP API
 * (POST /v1/node-storage) and the CLI (what SSM runs): 400 a bad entry (nothing written), 503 slurmctld
 * did not answer (rolled back), 502 it refused the file (rolled back) or another failure.
 */
export async function answerSetNodeStorage(
  input: unknown,
  options: { confPath: string; reconfigure: () => Promise<void> },
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    return { status: 200, body: { ok: true, ...(await applyNodeStorage(input, options)) } };
  } catch (error) {
    if (error instanceof ValidationError)
      return {
        status: 400,
        body: { error: `${error.message}: ${JSON.stringify(error.issues).slice(0, 400)}` },
      };
    const message = error instanceof Error ? error.message.slice(0, 500) : "failed";
    const rolledBack = error instanceof Error && error.name === "StorageRollbackError";
    const unreachable =
      error instanceof SlurmUnavailableError || (error as Error)?.cause instanceof SlurmUnavailableError;
    return { status: unreachable ? 503 : 502, body: { error: message, rolledBack } };
  }
}
