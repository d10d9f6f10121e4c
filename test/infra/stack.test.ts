import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { type FunctionKind, lambdaEnv } from "../../lib/aws/env.js";
import { API_ROUTES } from "../../lib/infra/api.js";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE } from "../../lib/ports/wake.js";
import { TABLE_ENV, TABLES, type TableDefinition } from "../../lib/state/tables.js";
import {
  createClusterDefinition,
  definitionJson,
  deleteClusterDefinition,
} from "../../lib/workflow/index.js";
import { synthNowScale } from "./synth.js";
import { ResolvedTemplate } from "./template-iam.js";

type Resource = { Type: string; Properties: Record<string, unknown> };

// GIVEN the stack with its defaults, WHEN synthesized (once for this file, cdk-nag included)
let template: Template;
beforeAll(() => {
  template = synthNowScale().template;
}, 120_000);

function resources(type: string): [string, Resource][] {
  return Object.entries(template.findResources(type)) as [string, Resource][];
}

/** Every statement of every IAM policy (inline and managed) in the template. */
function statements(): Record<string, unknown>[] {
  return [...resources("AWS::IAM::Policy"), ...resources("AWS::IAM::ManagedPolicy")].flatMap(
    ([, r]) => (r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement,
  );
}

function statementsWith(action: string): Record<string, unknown>[] {
  return statements().filter((s) => ([] as unknown[]).concat(s.Action).includes(action));
}

describe("DynamoDB tables", () => {
  it("THEN there is one table per lib/state/tables.ts entry, keyed as defined there", () => {
    template.resourceCountIs("AWS::DynamoDB::Table", Object.keys(TABLES).length);
    for (const def of Object.values(TABLES) as TableDefinition[]) {
      const keys: { AttributeName: string; KeyType: string }[] = [
        { AttributeName: def.partitionKey, KeyType: "HASH" },
      ];
      if (def.sortKey !== undefined) keys.push({ AttributeName: def.sortKey, KeyType: "RANGE" });
      template.hasResourceProperties("AWS::DynamoDB::Table", { KeySchema: keys });
    }
  });

  it("THEN every table has point-in-time recovery, a customer-managed key, on-demand billing and is retained", () => {
    for (const [, table] of resources("AWS::DynamoDB::Table")) {
      expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Properties.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: "KMS" });
      expect(
        (table.Properties.SSESpecification as { KMSMasterKeyId?: unknown }).KMSMasterKeyId,
      ).toBeDefined();
      expect(table.Properties.BillingMode).toBe("PAY_PER_REQUEST");
      expect(table.Properties.DeletionProtectionEnabled).toBe(true);
    }
    template.allResources("AWS::DynamoDB::Table", { DeletionPolicy: "Retain" });
  });

  it("THEN the tables with expiring records have their TTL attribute", () => {
    for (const def of Object.values(TABLES)) {
      if (!("ttlAttribute" in def)) continue;
      template.hasResourceProperties("AWS::DynamoDB::Table", {
        KeySchema: Match.arrayWith([{ AttributeName: def.partitionKey, KeyType: "HASH" }]),
        TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true },
      });
    }
  });
});

describe("KMS keys", () => {
  it("THEN both customer-managed keys rotate", () => {
    template.resourceCountIs("AWS::KMS::Key", 2);
    template.allResourcesProperties("AWS::KMS::Key", { EnableKeyRotation: true });
  });

  it("THEN the Tencent and Alibaba credentials are encrypted with a customer-managed key", () => {
    template.resourceCountIs("AWS::SecretsManager::Secret", 2);
    template.allResourcesProperties("AWS::SecretsManager::Secret", {
      KmsKeyId: { "Fn::GetAtt": [Match.stringLikeRegexp("^KeysSecretsKey"), "Arn"] },
    });
  });
});

describe("REST API", () => {
  it("THEN every method requires AWS_IAM (SigV4) and goes through the request validator", () => {
    const methods = resources("AWS::ApiGateway::Method");
    expect(methods).toHaveLength(API_ROUTES.reduce((n, r) => n + r.methods.length, 0));
    for (const [, method] of methods) {
      expect(method.Properties.AuthorizationType).toBe("AWS_IAM");
      expect(method.Properties.RequestValidatorId).toBeDefined();
    }
    template.hasResourceProperties("AWS::ApiGateway::RequestValidator", {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
  });

  it("THEN the stage writes access logs, is throttled and traced", () => {
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("requestId") },
      TracingEnabled: true,
      MethodSettings: Match.arrayWith([
        Match.objectLike({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40, LoggingLevel: "ERROR" }),
      ]),
    });
  });
});

describe("Lambda functions", () => {
  it("THEN the five handlers run nodejs22.x with Powertools' environment and the table names", () => {
    const functions = resources("AWS::Lambda::Function");
    expect(functions).toHaveLength(5);
    for (const [, fn] of functions) {
      expect(fn.Properties.Runtime).toBe("nodejs22.x");
      expect(fn.Properties.TracingConfig).toEqual({ Mode: "Active" });
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.POWERTOOLS_SERVICE_NAME).toBe("nowscale");
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe("NowScale");
      for (const name of Object.values(TABLE_ENV)) expect(env[name]).toBeDefined();
    }
  });

  it("THEN the scaler may run long enough to poll four times a minute (50 s window + 40 s margin)", () => {
    const [scaler] = resources("AWS::Lambda::Function").filter(([, fn]) =>
      /scale cycle/.test(String(fn.Properties.Description)),
    );
    expect(scaler?.[1].Properties.Timeout).toBeGreaterThanOrEqual(90);
  });

  it("THEN the functions that reach clusters know the agent transport, the node profile and the credentials", () => {
    const reaching = resources("AWS::Lambda::Function").filter(([, fn]) =>
      /scale cycle|orphans|REST API/.test(String(fn.Properties.Description)),
    );
    expect(reaching).toHaveLength(3);
    for (const [, fn] of reaching) {
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.NOWSCALE_AGENT_TRANSPORT).toBe("ssm");
      expect(env.NOWSCALE_NODE_INSTANCE_PROFILE_ARN).toBeDefined();
      expect(env.NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN).toBeDefined();
      expect(env.NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN).toBeDefined();
      // No role for other clouds' instances unless the stack is given one.
      expect(env.NOWSCALE_ALIBABA_NODE_ROLE_NAME).toBeUndefined();
    }
  });

  it("THEN the API's role may read the Tencent and Alibaba key secrets (sleep and wake stop and start their masters)", () => {
    const [api] = resources("AWS::Lambda::Function").filter(([, fn]) =>
      /REST API/.test(String(fn.Properties.Description)),
    );
    if (api === undefined) throw new Error("no API function");
    const role = (api[1].Properties.Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
    // CDK moves statements past the inline policy's size into an overflow managed policy: both count.
    const readable = [...resources("AWS::IAM::Policy"), ...resources("AWS::IAM::ManagedPolicy")]
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${role}"`))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement)
      .filter((st) => ([] as unknown[]).concat(st.Action).includes("secretsmanager:GetSecretValue"))
      .flatMap((st) => ([] as unknown[]).concat(st.Resource))
      .map((r) => (r as { Ref?: string }).Ref);
    const secrets = resources("AWS::SecretsManager::Secret").map(([id]) => id);
    expect(secrets).toHaveLength(2);
    for (const id of secrets) expect(readable).toContain(id);
  });

  it("THEN the other clouds' node roles given to the stack reach the functions that launch there", () => {
    // Act
    const given = synthNowScale({
      nodeRoleNames: { tencent: "NowScaleCvm", alibaba: "NowScaleEcs" },
    }).template;

    // Assess
    const launching = Object.entries(given.findResources("AWS::Lambda::Function")).filter(([, fn]) =>
      /scale cycle|orphans|REST API|create\/delete cluster/.test(String(fn.Properties.Description)),
    );
    expect(launching).toHaveLength(4);
    for (const [, fn] of launching) {
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.NOWSCALE_TENCENT_NODE_ROLE_NAME).toBe("NowScaleCvm");
      expect(env.NOWSCALE_ALIBABA_NODE_ROLE_NAME).toBe("NowScaleEcs");
    }
  }, 120_000);

  it("THEN the API and the reconciler know both state machines, may start them and read their executions", () => {
    // The reconciler starts the workflows again for clusters left CREATING or DELETING.
    const both = resources("AWS::Lambda::Function").filter(([, fn]) =>
      /orphans|REST API/.test(String(fn.Properties.Description)),
    );
    expect(both).toHaveLength(2);
    for (const [, fn] of both) {
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.NOWSCALE_CREATE_STATE_MACHINE_ARN).toBeDefined();
      expect(env.NOWSCALE_DELETE_STATE_MACHINE_ARN).toBeDefined();
    }
    // Two functions × two machines, one statement each.
    expect(statementsWith("states:StartExecution")).toHaveLength(4);
    expect(statementsWith("states:DescribeExecution")).toHaveLength(4);
  });

  it("THEN every log group has a retention and a customer-managed key", () => {
    for (const [, group] of resources("AWS::Logs::LogGroup")) {
      expect(group.Properties.RetentionInDays).toBe(30);
      expect(group.Properties.KmsKeyId).toBeDefined();
    }
  });

  it("THEN the scaler fan-out runs every minute and the reconciler every two minutes", () => {
    // Two, not five: an instance a crashed launch left unrecorded must be adopted within 300 s.
    template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 minute)" });
    template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(2 minutes)" });
  });

  it("THEN a wake on the stack's own bus runs the scaler for the cluster it names, flagged as a wake, once", () => {
    // Prepare
    const [[busId = ""] = []] = resources("AWS::Events::EventBus");
    const [[scalerId = ""] = []] = resources("AWS::Lambda::Function").filter(([id]) =>
      /^Scaler[0-9A-F]{8}$/.test(id),
    );
    const [[, rule] = ["", undefined]] = resources("AWS::Events::Rule").filter(
      ([, r]) => JSON.stringify(r.Properties.EventBusName) === JSON.stringify({ Ref: busId }),
    );
    const [target] = (rule?.Properties.Targets ?? []) as Record<string, unknown>[];
    const workflow = resources("AWS::Lambda::Function").find(([id]) => id.startsWith("WorkflowTask"));
    const workflowEnv = (workflow?.[1].Properties.Environment as { Variables?: Record<string, unknown> })
      ?.Variables;

    // Assess
    expect(rule?.Properties.EventPattern).toEqual({
      source: [WAKE_SOURCE],
      "detail-type": [WAKE_DETAIL_TYPE],
    });
    expect(target?.Arn).toEqual({ "Fn::GetAtt": [scalerId, "Arn"] });
    expect(target?.InputTransformer).toEqual({
      InputPathsMap: { "detail-clusterId": "$.detail.clusterId" },
      InputTemplate: '{"clusterId":<detail-clusterId>,"wake":true}',
    });
    // A wake not delivered at once is worth nothing: the schedule polls anyway.
    expect(target?.RetryPolicy).toEqual({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 });
    expect(workflowEnv?.NOWSCALE_WAKE_EVENT_BUS).toEqual({ Ref: busId });
  });
});

describe("IAM least privilege", () => {
  it("THEN RunInstances on instances requires the service's tag in the request and IMDSv2", () => {
    const launches = statementsWith("ec2:RunInstances").filter((s) =>
      JSON.stringify(s.Resource).includes(":instance/*"),
    );
    expect(launches.length).toBeGreaterThan(0);
    for (const s of launches) {
      expect(s.Condition).toMatchObject({
        StringEquals: { "aws:RequestTag/nowscale:managed": "true", "ec2:MetadataHttpTokens": "required" },
      });
    }
  });

  it("THEN launches may carry only NowScale's own tag keys (and Name), including the scaler's NowScaleRound", () => {
    const launches = statementsWith("ec2:RunInstances").filter((s) =>
      JSON.stringify(s.Resource).includes(":instance/*"),
    );
    for (const s of launches) {
      expect(s.Condition).toMatchObject({
        "ForAllValues:StringLike": { "aws:TagKeys": ["nowscale:*", "nowscale-*", "NowScale*", "Name"] },
      });
    }
  });

  it("THEN CreateTags is only allowed as part of a create call, with the tag", () => {
    for (const s of statementsWith("ec2:CreateTags")) {
      const equals = (s.Condition as { StringEquals: Record<string, unknown> }).StringEquals;
      expect(equals["ec2:CreateAction"]).toBeDefined();
      expect(equals["aws:RequestTag/nowscale:managed"]).toBe("true");
    }
  });

  it("THEN TerminateInstances and every delete only apply to resources carrying the tag", () => {
    for (const action of [
      "ec2:TerminateInstances",
      "ec2:DeleteVpc",
      "ec2:DeleteSecurityGroup",
      "secretsmanager:DeleteSecret",
    ]) {
      const found = statementsWith(action);
      expect(found.length, action).toBeGreaterThan(0);
      for (const s of found) {
        expect(s.Condition, action).toMatchObject({
          StringEquals: { "aws:ResourceTag/nowscale:managed": "true" },
        });
      }
    }
  });

  it("THEN iam:PassRole names only a node role (master or compute), for EC2 only", () => {
    const ec2Roles = resources("AWS::IAM::Role").filter(([, r]) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes("ec2.amazonaws.com"),
    );
    expect(ec2Roles.map(([id]) => id.replace(/[0-9A-F]{8}$/, "")).sort()).toEqual([
      "ComputeRole",
      "MasterRole",
    ]);
    const passes = statementsWith("iam:PassRole");
    expect(passes.length).toBeGreaterThan(0);
    for (const s of passes) {
      expect(ec2Roles.map(([id]) => ({ "Fn::GetAtt": [id, "Arn"] }))).toContainEqual(s.Resource);
      expect(s.Condition).toEqual({ StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } });
    }
  });

  it("THEN only the master role may put events, on the wake bus, every entry a wake", () => {
    const puts = statementsWith("events:PutEvents");
    expect(puts).toHaveLength(1);
    expect(puts[0]?.Condition).toEqual({
      "ForAllValues:StringEquals": {
        "events:source": [WAKE_SOURCE],
        "events:detail-type": [WAKE_DETAIL_TYPE],
      },
      Null: { "events:source": "false", "events:detail-type": "false" },
    });
    const [[busId = ""] = []] = resources("AWS::Events::EventBus");
    expect(puts[0]?.Resource).toEqual({ "Fn::GetAtt": [busId, "Arn"] });
  });

  it("THEN no statement allows every action", () => {
    for (const s of statements()) {
      for (const action of ([] as unknown[]).concat(s.Action))
        expect(action).not.toMatch(/^(\*|[a-z0-9-]+:\*)$/);
    }
  });
});

describe("Step Functions", () => {
  it("THEN the deployed definitions are lib/workflow's, with the task Lambda substituted", () => {
    for (const definition of [createClusterDefinition(), deleteClusterDefinition()]) {
      template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
        DefinitionString: definitionJson(definition),
        DefinitionSubstitutions: {
          TaskFunctionArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^WorkflowTask"), "Arn"] },
        },
      });
    }
  });

  it("THEN both state machines log every event and are traced", () => {
    template.resourceCountIs("AWS::StepFunctions::StateMachine", 2);
    template.allResourcesProperties("AWS::StepFunctions::StateMachine", {
      LoggingConfiguration: Match.objectLike({ Level: "ALL" }),
      TracingConfiguration: { Enabled: true },
    });
  });
});

describe("CloudWatch", () => {
  it("THEN there are alarms for launch failures, orphans, unreachable agents and cycle errors, sent to an encrypted topic", () => {
    template.resourceCountIs("AWS::CloudWatch::Alarm", 4);
    for (const name of ["LaunchFailures", "OrphansTerminated", "AgentUnreachable", "CycleErrors"]) {
      expect(JSON.stringify(template.findResources("AWS::CloudWatch::Alarm")), name).toContain(name);
    }
    template.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
  });

  it("THEN the dashboard shows demand, nodes, launch failures, latency and cycle duration", () => {
    const body = JSON.stringify(resources("AWS::CloudWatch::Dashboard")[0]?.[1].Properties.DashboardBody);
    for (const name of [
      "PendingDemand",
      "NodesLaunching",
      "NodesRunning",
      "NodesIdle",
      "LaunchFailures",
      "ScaleOutLatency",
      "CycleDuration",
    ]) {
      expect(body, name).toContain(name);
    }
  });
});

describe("Lambda environments", () => {
  it("THEN each function's environment passes its kind's schema, as its handler parses it at cold start", () => {
    // Prepare
    const t = new ResolvedTemplate(template.toJSON() as never);
    const kinds: Record<string, FunctionKind> = {
      ApiHandler: "api",
      Reconciler: "reconciler",
      Scaler: "scaler",
      ScalerFanout: "scalerFanout",
      WorkflowTask: "workflowTask",
    };
    // Act: Lambda itself sets AWS_REGION.
    const parsed = Object.entries(kinds).map(([id, kind]) =>
      lambdaEnv(kind, { ...t.functionEnv(t.functionId(id)), AWS_REGION: "us-east-1" }),
    );
    // Assess
    expect(parsed.map((e) => e.metricsNamespace)).toEqual(Array(5).fill("NowScale"));
    expect(parsed.map((e) => Object.values(e.tables).every((name) => name !== ""))).toEqual(
      Array(5).fill(true),
    );
  });
});
