import { listNamespaceNodes } from "../../local/netns.js";
import { addTestbedNode, removeTestbedNode, type Testbed } from "../../local/slurm-testbed.js";
import type { NamespaceNodes } from "./namespace-nodes.js";

/** Namespace nodes of a running test bed (lib/local/slurm-testbed.ts): they join its slurmctld. */
export function testbedNamespaceNodes(tb: Testbed): NamespaceNodes {
  return {
    create: (spec) => addTestbedNode(tb, spec),
    destroy: (name) => removeTestbedNode(tb, name),
    list: () => listNamespaceNodes(tb.netnsPrefix),
  };
}
