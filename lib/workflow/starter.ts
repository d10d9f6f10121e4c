import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";

/**
 * How an execution stands: RUNNING (live), or how it ended. ABSENT: no execution has that ARN (its start
 * failed, or it ran in a local process that has since stopped).
 */
export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "ABSENT";

export interface ExecutionState {
  status: ExecutionStatus;
  /** Epoch ms when it ended, when known. */
  stoppedAt?: number;
  /** For an execution that ended badly: its error and cause as one line, when the service gives them. */
  error?: string;
}

/**
 * Starts the cluster workflows (lib/workflow) and reads how their executions stand. Inputs: creation
 * `{"clusterId", "request"}` (the request of lib/control/lifecycle/request.ts), deletion `{"clusterId"}`.
 */
export interface WorkflowStarter {
  /**
   * Starts the creation workflow for the cluster and returns the execution's ARN. Idempotent: the
   * execution is named after the cluster, so a retried start returns the same execution (also once it
   * has ended). Throws when the start failed: then no execution exists.
   */
  startCreate(clusterId: string, request: unknown): Promise<string>;
  /**
   * Starts the deletion workflow and returns the execution's ARN; `attempt` tells retried deletions
   * apart. Idempotent per (cluster, attempt): the same attempt started twice is one execution.
   */
  startDelete(clusterId: string, attempt: number): Promise<string>;
  /**
   * How the execution an earlier start returned stands (Step Functions DescribeExecution). ABSENT when
   * there is no such execution. Throws only when the answer could not be had (then nothing is known).
   */
  describeExecution(executionArn: string): Promise<ExecutionState>;
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

  async describeExecution(executionArn: string): Promise<ExecutionState> {
    try {
      const out = await this.client.send(new DescribeExecutionCommand({ executionArn }));
      // PENDING_REDRIVE: a redrive was asked for and will run, so it is as good as running.
      const status: ExecutionStatus =
        out.status === undefined || out.status === "PENDING_REDRIVE" ? "RUNNING" : out.status;
      const error = [out.error, out.cause].filter((s) => s !== undefined && s !== "").join(": ");
      return {
        status,
        ...(out.stopDate === undefined ? {} : { stoppedAt: out.stopDate.getTime() }),
        ...(error === "" ? {} : { error: error.slice(0, 500) }),
      };
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return { status: "ABSENT" };
      throw error;
    }
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

/**
 * Records the starts, for tests and the local mode without Step Functions. Every started execution is
 * RUNNING until `finish` ends it; `failNextStart` makes the next start throw (nothing is started).
 */
export class RecordingWorkflowStarter implements WorkflowStarter {
  readonly started: {
    kind: "create" | "delete";
    clusterId: string;
    name: string;
    executionArn: string;
    request?: unknown;
  }[] = [];
  /** Every start call, including those that failed and those that found the execution already there. */
  readonly startCalls: { kind: "create" | "delete"; name: string; failed: boolean }[] = [];
  private readonly states = new Map<string, ExecutionState>();
  private readonly startFailures: { kind: "create" | "delete" | undefined; error: Error }[] = [];

  async startCreate(clusterId: string, request: unknown): Promise<string> {
    return this.start("create", clusterId, `create-${clusterId}`, request);
  }

  async startDelete(clusterId: string, attempt: number): Promise<string> {
    return this.start("delete", clusterId, `delete-${clusterId}-${attempt}`);
  }

  async describeExecution(executionArn: string): Promise<ExecutionState> {
    return this.states.get(executionArn) ?? { status: "ABSENT" };
  }

  /** The next start (of `kind`, or of either) throws `error` and starts nothing. */
  failNextStart(error: Error = new Error("StartExecution failed"), kind?: "create" | "delete"): void {
    this.startFailures.push({ kind, error });
  }

  /** Ends the execution named `name` (e.g. `delete-c-1-4`) as `status`, as the service would. */
  finish(name: string, status: Exclude<ExecutionStatus, "RUNNING" | "ABSENT">, at = 0, error?: string): void {
    const started = this.started.find((s) => s.name === name);
    if (started === undefined) throw new Error(`no execution ${name} was started`);
    this.states.set(started.executionArn, {
      status,
      stoppedAt: at,
      ...(error === undefined ? {} : { error }),
    });
  }

  /** Forgets the execution, as a local runner that restarted would. */
  forget(name: string): void {
    const started = this.started.find((s) => s.name === name);
    if (started !== undefined) this.states.delete(started.executionArn);
  }

  private start(kind: "create" | "delete", clusterId: string, name: string, request?: unknown): string {
    const index = this.startFailures.findIndex((f) => f.kind === undefined || f.kind === kind);
    const failure = index < 0 ? undefined : this.startFailures.splice(index, 1)[0];
    if (failure !== undefined) {
      this.startCalls.push({ kind, name, failed: true });
      throw failure.error;
    }
    this.startCalls.push({ kind, name, failed: false });
    const executionArn = `arn:local:execution:${kind}:${name}`;
    if (!this.started.some((s) => s.name === name)) {
      this.started.push({
        kind,
        clusterId,
        name,
        executionArn,
        ...(request === undefined ? {} : { request }),
      });
      this.states.set(executionArn, { status: "RUNNING" });
    }
    return executionArn;
  }
}
