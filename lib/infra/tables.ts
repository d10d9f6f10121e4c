import { RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import type * as kms from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { TABLE_ENV, TABLES, type TableDefinition, type TableId } from "../state/tables.js";

export interface NowScaleTablesProps {
  encryptionKey: kms.IKey;
  /**
   * What happens to the tables when the stack is deleted.
   * @default RemovalPolicy.RETAIN: the clusters' records outlive the stack
   */
  removalPolicy?: RemovalPolicy;
}

/**
 * The control plane's tables as lib/state/tables.ts defines them: on-demand, point-in-time recovery,
 * encrypted with the stack's data key, TTL where records expire.
 */
export class NowScaleTables extends Construct {
  readonly tables: Record<TableId, dynamodb.Table>;

  constructor(scope: Construct, id: string, props: NowScaleTablesProps) {
    super(scope, id);
    const tables = {} as Record<TableId, dynamodb.Table>;
    for (const tableId of Object.keys(TABLES) as TableId[]) {
      const def: TableDefinition = TABLES[tableId];
      tables[tableId] = new dynamodb.Table(this, pascal(tableId), {
        partitionKey: { name: def.partitionKey, type: dynamodb.AttributeType.STRING },
        ...(def.sortKey === undefined
          ? {}
          : { sortKey: { name: def.sortKey, type: dynamodb.AttributeType.STRING } }),
        ...(def.ttlAttribute === undefined ? {} : { timeToLiveAttribute: def.ttlAttribute }),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: props.encryptionKey,
        deletionProtection: (props.removalPolicy ?? RemovalPolicy.RETAIN) === RemovalPolicy.RETAIN,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
    }
    this.tables = tables;
  }

  /** TABLE_ENV → table name, for every function's environment. */
  environment(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const tableId of Object.keys(TABLES) as TableId[])
      env[TABLE_ENV[tableId]] = this.tables[tableId].tableName;
    return env;
  }
}

function pascal(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}Table`;
}
