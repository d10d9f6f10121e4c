import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import type { StateStore } from "../ports/state-store.js";

/** The scaler's event: which cluster to run one cycle for. */
export interface ScalerEvent {
  clusterId: string;
}

/**
 * One asynchronous invocation of the scaler per RUNNING cluster (InvocationType Event: the fan-out
 * does not wait, and a slow cluster never delays the others). Returns the clusters invoked.
 */
export async function fanOutScaler(
  store: StateStore,
  lambda: LambdaClient,
  scalerFunctionName: string,
): Promise<string[]> {
  const clusters = await store.listClusters({ status: "RUNNING" });
  const invoked: string[] = [];
  for (const cluster of clusters) {
    const event: ScalerEvent = { clusterId: cluster.clusterId };
    await lambda.send(
      new InvokeCommand({
        FunctionName: scalerFunctionName,
        InvocationType: "Event",
        Payload: Buffer.from(JSON.stringify(event)),
      }),
    );
    invoked.push(cluster.clusterId);
  }
  return invoked;
}
