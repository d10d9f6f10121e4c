/**
 * What the local provider needs from the machine: compute nodes as network namespaces, each running
 * `slurmd -Z` that joins a local slurmctld (design.md section 5). A port, so the provider's logic is unit
 * tested without root; testbed-nodes.ts wires it to lib/local (netns.ts, slurm-testbed.ts).
 */
export interface NamespaceNodeSpec {
  /** Slurm node name and instance id (SIMPLE_NAME). */
  name: string;
  /** The node's address inside its namespace. */
  address: string;
  cpus: number;
  realMemoryMiB: number;
  features: readonly string[];
}

export interface NamespaceNodes {
  /** Creates the namespace and veth and starts slurmd; resolves once the node has joined. Cleans up on failure. */
  create(spec: NamespaceNodeSpec): Promise<void>;
  /** Stops slurmd and the node's processes, removes it from Slurm, deletes namespace and veth. Idempotent. */
  destroy(name: string): Promise<void>;
  /** Names of the nodes whose namespaces exist now. */
  list(): Promise<string[]>;
}
