import { EC2Client } from "@aws-sdk/client-ec2";
import type { Credential } from "tencentcloud-sdk-nodejs-common";
import type { MasterPower } from "../ports/master-power.js";
import type { ClusterRecord } from "../ports/state-store.js";
import type { AlibabaAccessKey } from "../providers/alibaba-ecs/ecs-api.js";
import { AlibabaMasterPower } from "../providers/alibaba-ecs/master-power.js";
import { AwsMasterPower } from "../providers/aws-ec2/master-power.js";
import { TencentMasterPower } from "../providers/tencent-cvm/master-power.js";

export interface CloudMasterPowerOptions {
  /** The stack's Tencent key (lib/aws/runtime.ts reads it from its secret), read at the first call. */
  tencentCredential: () => Promise<Credential>;
  /** The stack's Alibaba key, likewise. */
  alibabaCredential: () => Promise<AlibabaAccessKey>;
  /** Test servers in place of the clouds' endpoints (the loopback CVM and ECS). */
  endpoints?: {
    tencent?: { endpoint: string; protocol: "https://" | "http://" };
    alibaba?: { endpoint: string; protocol: "https" | "http" };
  };
}

/**
 * Sleep and wake's master stop and start for a cluster, by the cloud it was created on (the API's
 * `masterPower`, functions/api.ts): EC2 with the API's role (whose IAM statement allows tagged masters
 * only), CVM and ECS with the stack's key for that cloud (the adapters check the master tags
 * themselves). The local mode and the fake cloud have none: sleep leaves their master running, saying so.
 */
export function cloudMasterPower(
  options: CloudMasterPowerOptions,
): (cluster: ClusterRecord) => MasterPower | undefined {
  return (cluster) => {
    const { cloud, region } = cluster.placement;
    if (cloud === "aws") return new AwsMasterPower(new EC2Client({ region }));
    if (cloud === "tencent")
      return new TencentMasterPower({
        region,
        credential: options.tencentCredential,
        ...(options.endpoints?.tencent ?? {}),
      });
    if (cloud === "alibaba")
      return new AlibabaMasterPower({
        regionId: region,
        credential: options.alibabaCredential,
        ...(options.endpoints?.alibaba ?? {}),
      });
    return undefined;
  };
}
