import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
// @ts-expect-error dynalite ships no types
import dynalite from "dynalite";
import { DynamoStateStore } from "../../lib/state/dynamo-store.js";
import { createTables, prefixedTableNames, type TableNames } from "../../lib/state/tables.js";

export interface TestDynamo {
  client: DynamoDBClient;
  endpoint: string;
  /** The HTTP server, for tests that watch the requests (the IAM simulation records them). */
  server: Server;
  close(): Promise<void>;
}

/** An in-memory dynalite on 127.0.0.1 and a random port; tables are ACTIVE at once. */
export async function startDynalite(): Promise<TestDynamo> {
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  return {
    client,
    endpoint,
    server,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let counter = 0;

/** A store on fresh tables (a unique prefix per call, so tests sharing one dynalite never meet). */
export async function freshStore(db: TestDynamo): Promise<{ store: DynamoStateStore; tables: TableNames }> {
  counter += 1;
  const tables = prefixedTableNames(`t${counter}-${process.pid}-`);
  await createTables(db.client, tables);
  return { store: new DynamoStateStore({ client: db.client, tables }), tables };
}
