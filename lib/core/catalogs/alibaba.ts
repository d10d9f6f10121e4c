import type { InstanceCatalog } from "../model.js";

/**
 * Common Alibaba Cloud ECS types (shapes from the ECS instance-family list). Prices are left out:
 * they vary by region; add pricePerHour in the config to weigh price.
 */
export const alibabaCatalog: InstanceCatalog = {
  "ecs.c7.large": { vcpus: 2, memoryMiB: 4096, gpus: 0 },
  "ecs.c7.xlarge": { vcpus: 4, memoryMiB: 8192, gpus: 0 },
  "ecs.c7.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "ecs.c7.4xlarge": { vcpus: 16, memoryMiB: 32768, gpus: 0 },
  "ecs.c7.8xlarge": { vcpus: 32, memoryMiB: 65536, gpus: 0 },
  "ecs.g7.large": { vcpus: 2, memoryMiB: 8192, gpus: 0 },
  "ecs.g7.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 0 },
  "ecs.g7.2xlarge": { vcpus: 8, memoryMiB: 32768, gpus: 0 },
  "ecs.g7.4xlarge": { vcpus: 16, memoryMiB: 65536, gpus: 0 },
  "ecs.r7.xlarge": { vcpus: 4, memoryMiB: 32768, gpus: 0 },
  "ecs.r7.2xlarge": { vcpus: 8, memoryMiB: 65536, gpus: 0 },
  "ecs.c8i.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "ecs.hfc7.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "ecs.ebmc7.32xlarge": { vcpus: 128, memoryMiB: 262144, gpus: 0 },
  "ecs.gn7i-c8g1.2xlarge": { vcpus: 8, memoryMiB: 30720, gpus: 1 },
  "ecs.gn6v-c8g1.8xlarge": { vcpus: 32, memoryMiB: 131072, gpus: 4 },
};
