import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subs from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRICS_NAMESPACE } from "../control/env.js";
import { SERVICE_NAME } from "./lambda.js";

/**
 * The dashboard and alarms on the control plane's EMF metrics (lib/control/metrics.ts). Powertools puts
 * a `service` dimension on every metric; LaunchFailures and AgentUnreachable also carry `Reason`.
 */

/** The failure kinds LaunchFailures is counted by (CloudErrorKind, lib/ports/errors.ts). */
export const LAUNCH_FAILURE_REASONS = [
  "InsufficientCapacity",
  "QuotaExceeded",
  "Throttled",
  "ServiceUnavailable",
  "InvalidRequest",
  "NotFound",
  "Unauthorized",
] as const;

export const AGENT_UNREACHABLE_REASONS = ["AGENT_UNREACHABLE", "SLURMCTLD_UNREACHABLE"] as const;

export interface NowScaleObservabilityProps {
  topicKey: kms.IKey;
  /** Where alarm notifications go. @default no subscription: subscribe to the topic yourself */
  alarmEmail?: string;
}

export class NowScaleObservability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarmTopic: sns.Topic;
  readonly alarms: Record<
    "launchFailures" | "orphans" | "agentUnreachable" | "cycleErrors",
    cloudwatch.Alarm
  >;

  constructor(scope: Construct, id: string, props: NowScaleObservabilityProps) {
    super(scope, id);
    this.alarmTopic = new sns.Topic(this, "AlarmTopic", {
      displayName: "NowScale alarms",
      masterKey: props.topicKey,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined)
      this.alarmTopic.addSubscription(new subs.EmailSubscription(props.alarmEmail));

    const launchFailures = sumOver("LaunchFailures", LAUNCH_FAILURE_REASONS, "launch failures");
    const agentUnreachable = sumOver("AgentUnreachable", AGENT_UNREACHABLE_REASONS, "agent unreachable");
    const orphans = metric("OrphansTerminated", "Sum");
    const cycleErrors = metric("CycleErrors", "Sum");

    this.alarms = {
      launchFailures: this.alarm(
        "LaunchFailures",
        launchFailures,
        5,
        "5 or more launch failures in 5 minutes",
      ),
      orphans: this.alarm("OrphansFound", orphans, 1, "the reconciler terminated untracked instances"),
      agentUnreachable: this.alarm(
        "AgentUnreachable",
        agentUnreachable,
        3,
        "agents unreachable 3 times in 5 minutes",
      ),
      cycleErrors: this.alarm("CycleErrors", cycleErrors, 3, "3 or more failed scale cycles in 5 minutes"),
    };

    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph("Pending demand (jobs)", [metric("PendingDemand", "Maximum")]),
          graph("Nodes", [
            metric("NodesLaunching", "Maximum"),
            metric("NodesRunning", "Maximum"),
            metric("NodesIdle", "Maximum"),
          ]),
        ],
        [
          graph(
            "Launch failures by reason",
            LAUNCH_FAILURE_REASONS.map((reason) => metric("LaunchFailures", "Sum", { Reason: reason })),
          ),
          graph("Scale-out latency (ms)", [
            metric("ScaleOutLatency", "p50"),
            metric("ScaleOutLatency", "p90"),
          ]),
        ],
        [
          graph("Cycle duration (ms)", [
            metric("CycleDuration", "Average"),
            metric("CycleDuration", "Maximum"),
          ]),
          graph("Problems", [orphans, agentUnreachable, cycleErrors]),
        ],
        [
          new cloudwatch.AlarmStatusWidget({
            title: "Alarms",
            alarms: Object.values(this.alarms),
            width: 24,
          }),
        ],
      ],
    });
  }

  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    description: string,
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, `${id}Alarm`, {
      alarmDescription: `NowScale: ${description}`,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
    return alarm;
  }
}

function metric(name: string, statistic: string, dimensions: Record<string, string> = {}): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    statistic,
    period: Duration.minutes(5),
    dimensionsMap: { service: SERVICE_NAME, ...dimensions },
    ...(Object.keys(dimensions).length > 0
      ? { label: `${name} ${Object.values(dimensions).join(" ")}` }
      : {}),
  });
}

/** One figure over every value of the Reason dimension (alarms cannot use SEARCH). */
function sumOver(name: string, reasons: readonly string[], label: string): cloudwatch.MathExpression {
  const usingMetrics: Record<string, cloudwatch.IMetric> = {};
  reasons.forEach((reason, i) => {
    usingMetrics[`r${i}`] = metric(name, "Sum", { Reason: reason });
  });
  return new cloudwatch.MathExpression({
    expression: Object.keys(usingMetrics)
      .map((k) => `FILL(${k}, 0)`)
      .join(" + "),
    usingMetrics,
    label,
    period: Duration.minutes(5),
  });
}

function graph(title: string, left: cloudwatch.IMetric[]): cloudwatch.GraphWidget {
  return new cloudwatch.GraphWidget({ title, left, width: 12, height: 6 });
}
