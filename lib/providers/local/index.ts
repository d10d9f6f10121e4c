import type { CloudProvider } from "../../ports/cloud-provider.js";
import { ManagedProvider, type ManagedProviderOptions } from "../shared/managed-provider.js";
import { LocalApi, type LocalApiOptions } from "./local-api.js";

export { LOCAL_CATALOG, LocalApi, type LocalApiOptions, type OfferingLimit } from "./local-api.js";
export type { NamespaceNodeSpec, NamespaceNodes } from "./namespace-nodes.js";
export { testbedNamespaceNodes } from "./testbed-nodes.js";

export type LocalProviderOptions = LocalApiOptions & ManagedProviderOptions;

/**
 * The local provider: instances are network namespaces running `slurmd -Z` against a local slurmctld,
 * with the same shared behaviour (candidate walk, offering cache, all-or-nothing, tokens) as the clouds.
 */
export function createLocalProvider(options: LocalProviderOptions): CloudProvider {
  return new ManagedProvider(new LocalApi(options), options);
}
