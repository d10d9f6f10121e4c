import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import type { StateStore } from "../ports/state-store.js";

/** The scaler's event: which cluster to run one cycle for. */
export interface ScalerEvent {
  clusterId: string;
}

/**
 * One asynchronous invocation of the scaler per RUNNING cluster (InvocationType Event: the fan-out
 * does not wait, and a slow cluster never delays the others). A failed invoke is reported and the
 * fan-out goes on with the next cluster. Returns the clusters invoked and those that failed.
 */
export async function fanOutScaler(
  store: StateStore,
  lambda: LambdaClient,
  scalerFunctionName: string,
): Promise<{ invoked: string[]; failed: { clusterId: string; error: string }[] }> {
  const clusters = await store.listClusters({ status: "RUNNING" });
  const invoked: string[] = [];
  const failed: { clusterId: string; error: string }[] = [];
  for (const cluster of clusters) {
    const event: ScalerEvent = { clusterId: cluster.clusterId };
    try {
      await lambda.send(
        new InvokeCommand({
          FunctionName: scalerFunctionName,
          InvocationType: "Event",
          Payload: Buffer.from(JSON.stringify(event)),
        }),
      );
      invoked.push(cluster.clusterId);
    } catch (error) {
      // One failed invoke (throttled, a transient error) must not leave the clusters after it unscaled.
      failed.push({ clusterId: cluster.clusterId, error: (error as Error).message.slice(0, 300) });
    }
  }
  return { invoked, failed };
}
