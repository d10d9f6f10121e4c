import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";

/**
 * Starts the cluster workflows (lib/workflow). Inputs: creation `{"clusterId", "request"}` (the request
 * of lib/control/lifecycle/request.ts), deletion `{"clusterId"}`.
 */
export interface WorkflowStarter {
  /**
   * Starts the creation workflow for the cluster. Idempotent: the execution is named after the cluster,
   * so a retried start returns the same execution.
   */
  startCreate(clusterId: string, request: unknown): Promise<string>;
  /** Starts the deletion workflow; `attempt` tells retried deletions apart. Idempotent per (cluster, attempt). */
  startDelete(clusterId: string, attempt: number): Promise<string>;
}

export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly createArn: string,
    private readonly deleteArn: string,
  ) {}

  startCreate(clusterId: string, request: unknown): Promise<string> {
    return this.start(this.createArn, `create-${clusterId}`, { clusterId, request });
  }

  startDelete(clusterId: string, attempt: number): Promise<string> {
    return this.start(this.deleteArn, `delete-${clusterId}-${attempt}`, { clusterId });
  }

  private async start(stateMachineArn: string, name: string, input: object): Promise<string> {
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
      );
      return out.executionArn ?? "";
    } catch (error) {
      // Same name, different input: cannot happen for our inputs; same name and input returns the execution.
      if (error instanceof ExecutionAlreadyExists) {
        const machine = stateMachineArn.split(":stateMachine:");
        return `${machine[0]}:execution:${machine[1]}:${name}`;
      }
      throw error;
    }
  }
}

/** Records the starts, for tests and the local mode without Step Functions. */
export class RecordingWorkflowStarter implements WorkflowStarter {
  readonly started: { kind: "create" | "delete"; clusterId: string; name: string; request?: unknown }[] = [];

  async startCreate(clusterId: string, request: unknown): Promise<string> {
    const name = `create-${clusterId}`;
    if (!this.started.some((s) => s.name === name))
      this.started.push({ kind: "create", clusterId, name, request });
    return `arn:local:execution:create:${name}`;
  }

  async startDelete(clusterId: string, attempt: number): Promise<string> {
    const name = `delete-${clusterId}-${attempt}`;
    if (!this.started.some((s) => s.name === name)) this.started.push({ kind: "delete", clusterId, name });
    return `arn:local:execution:delete:${name}`;
  }
}
