import type { InstanceCatalog } from "../model.js";

/**
 * Common AWS EC2 types. Shapes from the EC2 instance-type specs; prices are us-east-1 Linux
 * on-demand USD/hour as published at the time of writing: a guide for planning, not a bill.
 */
export const awsCatalog: InstanceCatalog = {
  "t3.medium": { vcpus: 2, memoryMiB: 4096, gpus: 0, pricePerHour: 0.0416 },
  "t3.large": { vcpus: 2, memoryMiB: 8192, gpus: 0, pricePerHour: 0.0832 },
  "c5.large": { vcpus: 2, memoryMiB: 4096, gpus: 0, pricePerHour: 0.085 },
  "c5.xlarge": { vcpus: 4, memoryMiB: 8192, gpus: 0, pricePerHour: 0.17 },
  "c5.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0, pricePerHour: 0.34 },
  "c5.4xlarge": { vcpus: 16, memoryMiB: 32768, gpus: 0, pricePerHour: 0.68 },
  "c5.9xlarge": { vcpus: 36, memoryMiB: 73728, gpus: 0, pricePerHour: 1.53 },
  "c5.18xlarge": { vcpus: 72, memoryMiB: 147456, gpus: 0, pricePerHour: 3.06 },
  "c6i.xlarge": { vcpus: 4, memoryMiB: 8192, gpus: 0, pricePerHour: 0.17 },
  "c6i.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0, pricePerHour: 0.34 },
  "c6i.4xlarge": { vcpus: 16, memoryMiB: 32768, gpus: 0, pricePerHour: 0.68 },
  "c6i.8xlarge": { vcpus: 32, memoryMiB: 65536, gpus: 0, pricePerHour: 1.36 },
  "c6i.16xlarge": { vcpus: 64, memoryMiB: 131072, gpus: 0, pricePerHour: 2.72 },
  "c7i.2xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 0, pricePerHour: 0.357 },
  "c7i.4xlarge": { vcpus: 16, memoryMiB: 32768, gpus: 0, pricePerHour: 0.714 },
  "m5.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 0, pricePerHour: 0.192 },
  "m5.2xlarge": { vcpus: 8, memoryMiB: 32768, gpus: 0, pricePerHour: 0.384 },
  "m5.4xlarge": { vcpus: 16, memoryMiB: 65536, gpus: 0, pricePerHour: 0.768 },
  "m6i.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 0, pricePerHour: 0.192 },
  "m6i.2xlarge": { vcpus: 8, memoryMiB: 32768, gpus: 0, pricePerHour: 0.384 },
  "m6i.4xlarge": { vcpus: 16, memoryMiB: 65536, gpus: 0, pricePerHour: 0.768 },
  "r5.xlarge": { vcpus: 4, memoryMiB: 32768, gpus: 0, pricePerHour: 0.252 },
  "r5.2xlarge": { vcpus: 8, memoryMiB: 65536, gpus: 0, pricePerHour: 0.504 },
  "r6i.2xlarge": { vcpus: 8, memoryMiB: 65536, gpus: 0, pricePerHour: 0.504 },
  "hpc6a.48xlarge": { vcpus: 96, memoryMiB: 393216, gpus: 0, pricePerHour: 2.88 },
  "hpc7a.96xlarge": { vcpus: 192, memoryMiB: 786432, gpus: 0, pricePerHour: 7.2 },
  "g4dn.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 1, pricePerHour: 0.526 },
  "g4dn.12xlarge": { vcpus: 48, memoryMiB: 196608, gpus: 4, pricePerHour: 3.912 },
  "g5.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 1, pricePerHour: 1.006 },
  "g5.12xlarge": { vcpus: 48, memoryMiB: 196608, gpus: 4, pricePerHour: 5.672 },
  "p3.2xlarge": { vcpus: 8, memoryMiB: 62464, gpus: 1, pricePerHour: 3.06 },
  "p4d.24xlarge": { vcpus: 96, memoryMiB: 1179648, gpus: 8, pricePerHour: 32.7726 },
};
