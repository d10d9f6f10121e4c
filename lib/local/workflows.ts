import { createClusterDefinition, deleteClusterDefinition } from "../workflow/index.js";
import { type LocalRunResult, runWorkflowLocally } from "../workflow/local-runner.js";
import type { ExecutionState, WorkflowStarter } from "../workflow/starter.js";
import type { LifecycleDeps } from "../workflow/tasks/deps.js";
import { runLifecycleTask } from "../workflow/tasks/dispatch.js";

/**
 * The API's WorkflowStarter in local mode: the creation and deletion workflows run from the same ASL
 * definitions CDK deploys (aws-local-stepfunctions), each Task calling the lifecycle tasks in process.
 * A start returns at once; the run goes on in the background, as a Step Functions execution would.
 * Runs live in this process only: after a restart their executions are ABSENT, and the lifecycle
 * recovery (lib/control/lifecycle-recovery.ts) starts what they left unfinished again.
 */
export class LocalWorkflowStarter implements WorkflowStarter {
  private readonly running = new Map<string, Promise<LocalRunResult>>();
  private readonly states = new Map<string, ExecutionState>();

  constructor(
    private readonly deps: LifecycleDeps,
    private readonly agentPort: number,
    private readonly log: (line: string) => void,
    /** Pause of every Wait state (the agent health poll). */
    private readonly waitMs = 1000,
  ) {}

  async startCreate(clusterId: string, request: unknown): Promise<string> {
    return this.start(`create-${clusterId}`, () =>
      runWorkflowLocally(
        createClusterDefinition(),
        { clusterId, request: withLocalAgentPort(request, this.agentPort) },
        (input) => runLifecycleTask(this.deps, input),
        { waitMs: this.waitMs, retryMs: 500 },
      ),
    );
  }

  async startDelete(clusterId: string, attempt: number): Promise<string> {
    return this.start(`delete-${clusterId}-${attempt}`, () =>
      runWorkflowLocally(
        deleteClusterDefinition(),
        { clusterId },
        (input) => runLifecycleTask(this.deps, input),
        { waitMs: this.waitMs, retryMs: 500 },
      ),
    );
  }

  async describeExecution(executionArn: string): Promise<ExecutionState> {
    if (!executionArn.startsWith(ARN_PREFIX)) return { status: "ABSENT" };
    return this.states.get(executionArn.slice(ARN_PREFIX.length)) ?? { status: "ABSENT" };
  }

  /** Resolves when every run started so far has ended. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private start(name: string, run: () => Promise<LocalRunResult>): string {
    const arn = `${ARN_PREFIX}${name}`;
    if (!this.running.has(name)) {
      this.log(`workflow ${name} started`);
      this.states.set(name, { status: "RUNNING" });
      const done = run().then(
        (result) => {
          const why = result.error === undefined ? "" : `: ${result.error.name}: ${result.error.message}`;
          this.log(`workflow ${name} ${result.status}${why}`.slice(0, 1000));
          this.states.set(name, {
            status: result.status,
            stoppedAt: Date.now(),
            ...(result.error === undefined ? {} : { error: why.slice(2, 502) }),
          });
          return result;
        },
        (error: unknown) => {
          this.log(`workflow ${name} could not run: ${(error as Error).message}`.slice(0, 1000));
          this.states.set(name, {
            status: "FAILED",
            stoppedAt: Date.now(),
            error: `could not run: ${(error as Error).message}`.slice(0, 500),
          });
          throw error;
        },
      );
      done.catch(() => undefined);
      this.running.set(name, done);
    }
    return arn;
  }
}

const ARN_PREFIX = "arn:aws:states:local:000000000000:execution:nowscale-local:";

/**
 * The local master is this machine's agent, whose port the local mode chose: the request's
 * `master.agentPort` is set to it (anything else in the request is left for the workflow to validate).
 */
export function withLocalAgentPort(request: unknown, agentPort: number): unknown {
  if (typeof request !== "object" || request === null) return request;
  const { master } = request as { master?: unknown };
  if (typeof master !== "object" || master === null) return request;
  return { ...request, master: { ...master, agentPort } };
}
