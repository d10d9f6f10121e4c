import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/**
 * The request shapes of Tencent's APIs as the official SDK declares them (its *_models.d.ts files), so the
 * loopback simulator refuses a request whose field the real API would not know (a misspelt `VpcID`, a
 * `Tags` of the wrong shape) or that lacks a required one, as the real API does with UnknownParameter and
 * MissingParameter. Only the SDK's declarations are read: no list of fields is kept by hand.
 */

interface Field {
  optional: boolean;
  /** The interface the value (or each element) must match, when it is one of the file's own. */
  type?: string;
}

type Models = Map<string, Map<string, Field>>;

const require = createRequire(import.meta.url);
const cache = new Map<string, Models>();

/** The model files of each (service, version) the simulator answers. */
export const MODEL_FILES: Record<string, string> = {
  "cvm:2017-03-12": "tencentcloud-sdk-nodejs-cvm/tencentcloud/services/cvm/v20170312/cvm_models.d.ts",
  "vpc:2017-03-12": "tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_models.d.ts",
  "ssm:2019-09-23": "tencentcloud-sdk-nodejs-ssm/tencentcloud/services/ssm/v20190923/ssm_models.d.ts",
  "tat:2020-10-28": "tencentcloud-sdk-nodejs/tencentcloud/services/tat/v20201028/tat_models.d.ts",
};

export function loadModels(key: string): Models {
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const file = MODEL_FILES[key];
  if (file === undefined) throw new Error(`no SDK models for ${key}`);
  const text = readFileSync(require.resolve(file), "utf8");
  const models: Models = new Map();
  for (const match of text.matchAll(/^export interface (\w+) \{\n([\s\S]*?)^\}/gm)) {
    const [, name, body] = match as unknown as [string, string, string];
    const fields = new Map<string, Field>();
    // Each field is `    Name?: Type;` at four spaces (comments are in /** */ blocks above it).
    for (const f of body.matchAll(/^ {4}(\w+)(\?)?: (?:Array<(\w+)>|(\w+));$/gm)) {
      const [, fieldName, optional, element, plain] = f as unknown as [
        string,
        string,
        string?,
        string?,
        string?,
      ];
      const type = element ?? plain;
      fields.set(fieldName, { optional: optional === "?", ...(type === undefined ? {} : { type }) });
    }
    models.set(name, fields);
  }
  // A request without parameters is declared `export type XRequest = null;` (CVM's DescribeZones).
  for (const match of text.matchAll(/^export type (\w+Request) = null;$/gm)) {
    models.set(match[1] as string, new Map());
  }
  cache.set(key, models);
  return models;
}

/**
 * The problems of `params` as `<Action>Request` of the model (empty: none): unknown fields, missing
 * required ones, recursively into the file's own nested types. An action the SDK does not declare is a
 * problem too.
 */
export function checkRequest(key: string, action: string, params: unknown): string[] {
  const models = loadModels(key);
  const root = models.get(`${action}Request`);
  if (root === undefined) return [`${key} has no action ${action} in the SDK's models`];
  const problems: string[] = [];
  const check = (value: unknown, fields: Map<string, Field>, path: string) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push(`${path || "the request"} must be an object`);
      return;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const field = fields.get(key);
      if (field === undefined) {
        problems.push(`UnknownParameter ${path}${key}`);
        continue;
      }
      const nested = field.type === undefined ? undefined : models.get(field.type);
      if (nested === undefined) continue;
      const items = Array.isArray(record[key]) ? (record[key] as unknown[]) : [record[key]];
      items.forEach((item, i) => {
        check(item, nested, `${path}${key}${Array.isArray(record[key]) ? `[${i}]` : ""}.`);
      });
    }
    for (const [name, field] of fields)
      if (!field.optional && record[name] === undefined) problems.push(`MissingParameter ${path}${name}`);
  };
  check(params, root, "");
  return problems;
}
