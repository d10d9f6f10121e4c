import {
  CreateTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";

/**
 * The control plane's DynamoDB tables, defined once for the store (lib/state/dynamo-store.ts), the CDK
 * stack (lib/infra) and local runs. Every key attribute is a string. TTL attributes hold epoch SECONDS
 * (DynamoDB's TTL unit); records keep their own millisecond times next to them.
 */
export interface TableDefinition {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly ttlAttribute?: string;
}

export const TABLES = {
  /** One item per cluster: status, version, autoscaling config, workflow resources, queue health. */
  clusters: { partitionKey: "clusterId" },
  /** Per cluster: launch intents (`launch#<round>`) and nodes (the instance id is the node name). */
  nodes: { partitionKey: "clusterId", sortKey: "nodeName" },
  /** Scaling events, newest first by eventId (time-ordered); expire after a retention period. */
  events: { partitionKey: "clusterId", sortKey: "eventId", ttlAttribute: "expiresAt" },
  /** Leases (one per cluster for the scaler, one for the reconciler); expired ones are removed by TTL. */
  leases: { partitionKey: "leaseKey", ttlAttribute: "expiresAt" },
  /** API Idempotency-Key → the cluster it created; expires after a day. */
  idempotency: { partitionKey: "idempotencyKey", ttlAttribute: "expiresAt" },
  /**
   * Per cluster: the nodes whose record was deleted, each with its end (`<node>#<launch time>`), for
   * node-hours and cost; expire after the usage retention. Apart from `nodes`, which every scaler poll
   * reads whole.
   */
  usage: { partitionKey: "clusterId", sortKey: "usageKey", ttlAttribute: "expiresAt" },
} as const satisfies Record<string, TableDefinition>;

export type TableId = keyof typeof TABLES;

/** Environment variables that carry each table's name into the Lambda functions. */
export const TABLE_ENV = {
  clusters: "NOWSCALE_TABLE_CLUSTERS",
  nodes: "NOWSCALE_TABLE_NODES",
  events: "NOWSCALE_TABLE_EVENTS",
  leases: "NOWSCALE_TABLE_LEASES",
  idempotency: "NOWSCALE_TABLE_IDEMPOTENCY",
  usage: "NOWSCALE_TABLE_USAGE",
} as const satisfies Record<TableId, string>;

export type TableNames = Record<TableId, string>;

/** Names with a common prefix, for tests and the local mode. */
export function prefixedTableNames(prefix: string): TableNames {
  return {
    clusters: `${prefix}clusters`,
    nodes: `${prefix}nodes`,
    events: `${prefix}events`,
    leases: `${prefix}leases`,
    idempotency: `${prefix}idempotency`,
    usage: `${prefix}usage`,
  };
}

/**
 * Creates the tables (on-demand billing) on the given client: dynalite in tests, the local mode, or a
 * real account without CDK. Tables that already exist are left alone. TTL is switched on where the
 * endpoint supports it (dynalite does not implement UpdateTimeToLive; that is ignored).
 */
export async function createTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  for (const id of Object.keys(TABLES) as TableId[]) {
    const def: TableDefinition = TABLES[id];
    const keys = [{ AttributeName: def.partitionKey, KeyType: "HASH" as const }];
    const attrs = [{ AttributeName: def.partitionKey, AttributeType: "S" as const }];
    if (def.sortKey !== undefined) {
      keys.push({ AttributeName: def.sortKey, KeyType: "RANGE" as never });
      attrs.push({ AttributeName: def.sortKey, AttributeType: "S" });
    }
    try {
      await client.send(
        new CreateTableCommand({
          TableName: names[id],
          KeySchema: keys,
          AttributeDefinitions: attrs,
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    if (def.ttlAttribute !== undefined) {
      try {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: names[id],
            TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true },
          }),
        );
      } catch {
        // dynalite has no TTL API; real DynamoDB needs the table ACTIVE first (CDK sets TTL there).
      }
    }
  }
}
