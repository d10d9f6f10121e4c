import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subs from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRICS_NAMESPACE } from "../aws/env.js";

/**
 * The dashboard and alarms on the control plane's EMF metrics (lib/control/metrics.ts), read with the
 * dimensions the handlers emit them with (proven by test/infra/metric-dimensions.test.ts from the
 * handlers' own EMF output): Powertools puts `service` on every metric; the scaler adds `ClusterId` to
 * all of its metrics (and `Reason` to LaunchFailures and AgentUnreachable, `Queue` to per-queue ones);
 * the reconciler emits without `ClusterId`.
 *
 * Alarms must add up every cluster, whichever dimensions a metric carries: they use a Metrics Insights
 * query over the whole namespace (`SELECT SUM(m) FROM "NowScale"`), which no new dimension can hide a
 * figure from. The dashboard graphs one line per cluster with SEARCH over the exact dimension set.
 */

/** The dimension sets the handlers emit each dashboard metric with (`service` is Powertools'). */
export const EMITTED_DIMENSIONS = {
  scaler: ["ClusterId", "service"],
  scalerByReason: ["ClusterId", "Reason", "service"],
} as const;

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

    const launchFailures = insightsSum("LaunchFailures", "launch failures, all clusters and reasons");
    const agentUnreachable = insightsSum("AgentUnreachable", "agent unreachable, all clusters");
    const orphans = insightsSum("OrphansTerminated", "orphans terminated");
    const cycleErrors = insightsSum("CycleErrors", "failed scale and reconcile cycles");

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

    const byCluster = EMITTED_DIMENSIONS.scaler;
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          graph("Pending demand (jobs) by cluster", [search("PendingDemand", byCluster, "Maximum")]),
          graph("Nodes by cluster", [
            search("NodesLaunching", byCluster, "Maximum"),
            search("NodesRunning", byCluster, "Maximum"),
            search("NodesIdle", byCluster, "Maximum"),
          ]),
        ],
        [
          graph("Launch failures by cluster and reason", [
            search("LaunchFailures", EMITTED_DIMENSIONS.scalerByReason, "Sum"),
          ]),
          graph("Scale-out latency (ms) by cluster", [
            search("ScaleOutLatency", byCluster, "p50"),
            search("ScaleOutLatency", byCluster, "p90"),
          ]),
        ],
        [
          graph("Cycle duration (ms) by cluster", [
            search("CycleDuration", byCluster, "Average"),
            search("CycleDuration", byCluster, "Maximum"),
          ]),
          graph("Problems (all clusters)", [orphans, agentUnreachable, cycleErrors]),
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

/** One line per dimension combination: SEARCH over exactly the dimension set the handlers emit. */
function search(name: string, dimensions: readonly string[], statistic: string): cloudwatch.MathExpression {
  const schema = [METRICS_NAMESPACE, ...dimensions].join(",");
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{${schema}} MetricName="${name}"', '${statistic}', 300)`,
    usingMetrics: {},
    // No label: CloudWatch names each line after its dimensions (the cluster, the reason).
    period: Duration.minutes(5),
  });
}

/** The sum over every time series of the metric in the namespace, whatever its dimensions. */
function insightsSum(name: string, label: string): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: `SELECT SUM(${name}) FROM "${METRICS_NAMESPACE}"`,
    usingMetrics: {},
    label,
    period: Duration.minutes(5),
  });
}

function graph(title: string, left: cloudwatch.IMetric[]): cloudwatch.GraphWidget {
  return new cloudwatch.GraphWidget({ title, left, width: 12, height: 6 });
}
