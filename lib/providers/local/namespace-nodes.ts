/**
 * What the local provider needs from the machine: instances as network namespaces that boot from their
 * user data as a cloud instance does (design.md section 5; lib/providers/local/instance-boot.ts). A port, so the
 * provider's logic is unit tested without root; testbed-nodes.ts wires it to lib/local.
 */
export interface NamespaceNodeSpec {
  /** The instance id (SIMPLE_NAME): what its metadata service answers, so its Slurm node name. */
  name: string;
  /** The instance's address inside its namespace. */
  address: string;
  instanceType: string;
  zone: string;
  /** The image: the local one is pre-installed (its marker file exists) unless it is "local-bare". */
  imageId: string;
  /** The user data, run once as root at boot; without it the instance boots and does nothing. */
  userData?: string;
}

export interface NamespaceNodes {
  /**
   * Creates the namespace and veth and the instance's metadata and secret endpoints, and starts its user
   * data. Resolves once the boot has started, not when the node joins Slurm (as a cloud's launch call).
   * Cleans up and rejects when the instance cannot be created.
   */
  create(spec: NamespaceNodeSpec): Promise<void>;
  /** Stops the instance's processes, removes it from Slurm, deletes namespace and veth. Idempotent; the console log stays. */
  destroy(name: string): Promise<void>;
  /** Names of the nodes whose namespaces exist now. */
  list(): Promise<string[]>;
  /** The last `maxLines` lines of the instance's console log; undefined when there is none. Kept after destroy. */
  consoleOutput(name: string, maxLines: number): Promise<string | undefined>;
}
