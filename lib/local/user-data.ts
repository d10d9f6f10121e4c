import { type BootCloud, renderComputeUserData } from "../control/compute-user-data.js";
import type { Launch } from "../core/model.js";
import type { ClusterRecord } from "../ports/state-store.js";
import type { Testbed } from "../providers/local/slurm-testbed.js";
import { LOCAL_MUNGE_SECRET } from "../providers/local/testbed-nodes.js";

/**
 * The user data of the local mode's compute launches: the cloud's own compute boot script
 * (renderComputeUserData, the function the deployed scaler uses), pointed at the test bed's slurmctld
 * on its bridge address and at the munge key secret every local instance's secret store holds. The
 * local provider runs it in the instance, so a local node boots exactly as a cloud node of `cloud` does.
 */
export function localComputeUserData(
  testbed: Testbed,
  cloud: BootCloud = "aws",
): (cluster: ClusterRecord, launch: Launch) => string | undefined {
  return (cluster, launch) =>
    renderComputeUserData(cluster, launch, {
      cloud,
      controllerAddress: testbed.controlAddress,
      controllerPort: testbed.slurmctldPort,
      mungeSecret: LOCAL_MUNGE_SECRET,
      region: cluster.placement.region,
    });
}
