import type { InstanceCatalog } from "../model.js";

/**
 * Common Tencent Cloud CVM types (shapes from the CVM instance-type list). Prices are left out:
 * they vary by region and are published in CNY; add pricePerHour in the config to weigh price.
 */
export const tencentCatalog: InstanceCatalog = {
  "SA2.MEDIUM4": { vcpus: 2, memoryMiB: 4096, gpus: 0 },
  "SA2.LARGE8": { vcpus: 4, memoryMiB: 8192, gpus: 0 },
  "SA2.LARGE16": { vcpus: 4, memoryMiB: 16384, gpus: 0 },
  "SA2.2XLARGE16": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "SA2.2XLARGE32": { vcpus: 8, memoryMiB: 32768, gpus: 0 },
  "SA2.4XLARGE32": { vcpus: 16, memoryMiB: 32768, gpus: 0 },
  "SA2.8XLARGE64": { vcpus: 32, memoryMiB: 65536, gpus: 0 },
  "SA3.LARGE8": { vcpus: 4, memoryMiB: 8192, gpus: 0 },
  "SA3.2XLARGE16": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "SA3.4XLARGE32": { vcpus: 16, memoryMiB: 32768, gpus: 0 },
  "S5.LARGE8": { vcpus: 4, memoryMiB: 8192, gpus: 0 },
  "S5.2XLARGE16": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "S5.4XLARGE32": { vcpus: 16, memoryMiB: 32768, gpus: 0 },
  "S6.2XLARGE16": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "C5.2XLARGE16": { vcpus: 8, memoryMiB: 16384, gpus: 0 },
  "C5.4XLARGE32": { vcpus: 16, memoryMiB: 32768, gpus: 0 },
  "M5.2XLARGE64": { vcpus: 8, memoryMiB: 65536, gpus: 0 },
  "HCCPNV4h.48XLARGE384": { vcpus: 96, memoryMiB: 393216, gpus: 0 },
  "HCCS5.24XLARGE384": { vcpus: 96, memoryMiB: 393216, gpus: 0 },
  "GN7.2XLARGE32": { vcpus: 8, memoryMiB: 32768, gpus: 1 },
  "GN7.20XLARGE320": { vcpus: 80, memoryMiB: 327680, gpus: 4 },
};
