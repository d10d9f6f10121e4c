import * as ssm from "aws-cdk-lib/aws-ssm";
import { Construct } from "constructs";
import { AGENT_DOCUMENT, payloadPipeline } from "../agent-channels/ssm.js";

/**
 * The one SSM document the control plane may run on a master: the agent's `report`, a node action
 * (drain, resume, delete-node) with a node name and a reason, or set-job-notes / sync-placeholders / set-partitions with
 * their JSON as a gzipped base64 payload, each checked by SSM against the document's patterns before
 * anything runs. The functions' policies allow SendCommand with this document only
 * (lib/infra/permissions.ts), so a compromised function cannot run an arbitrary shell on a cluster.
 */
export class AgentDocument extends Construct {
  readonly document: ssm.CfnDocument;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const agent = "/opt/nowscale/nowscale-agent.js";
    this.document = new ssm.CfnDocument(this, "Document", {
      documentType: "Command",
      updateMethod: "NewVersion",
      content: {
        schemaVersion: "2.2",
        description: "NowScale: the agent's report or a node action on a cluster's master",
        parameters: {
          action: { type: "String", allowedValues: [...AGENT_DOCUMENT.actions] },
          node: { type: "String", default: "", allowedPattern: AGENT_DOCUMENT.nodePattern },
          reason: { type: "String", default: "", allowedPattern: AGENT_DOCUMENT.reasonPattern },
          payload: { type: "String", default: "", allowedPattern: AGENT_DOCUMENT.payloadPattern },
        },
        mainSteps: [
          {
            action: "aws:runShellScript",
            name: "agent",
            inputs: {
              timeoutSeconds: "60",
              // The values passed SSM's patterns: no quote can end the single-quoted strings.
              runCommand: [
                "A='{{ action }}'; N='{{ node }}'; R='{{ reason }}'; P='{{ payload }}'",
                'case "$A" in',
                `  report) exec node ${agent} report ;;`,
                `  slurm-setup) exec node ${agent} slurm-setup ;;`,
                `  drain) exec node ${agent} drain "$N" --reason "$R" ;;`,
                `  resume|delete-node) exec node ${agent} "$A" "$N" ;;`,
                // The JSON, gzipped and base64-encoded by the channel (lib/agent-channels/run-command-channel.ts), on stdin.
                `  set-job-notes) ${payloadPipeline('"$P"', `node ${agent} set-job-notes --notes -`)} ;;`,
                `  sync-placeholders) ${payloadPipeline('"$P"', `node ${agent} sync-placeholders --placeholders -`)} ;;`,
                `  set-partitions) ${payloadPipeline('"$P"', `node ${agent} set-partitions --partitions -`)} ;;`,
                `  set-node-storage) ${payloadPipeline('"$P"', `node ${agent} set-node-storage --storage -`)} ;;`,
                // Secret ids only: the agent reads the users' passwords and keys from Secrets Manager itself.
                `  set-users) ${payloadPipeline('"$P"', `node ${agent} set-users --users -`)} ;;`,
                "esac",
                "exit 64",
              ],
            },
          },
        ],
      },
    });
  }

  /** The document's name (what SendCommand's DocumentName takes). */
  get documentName(): string {
    return this.document.ref;
  }
}
