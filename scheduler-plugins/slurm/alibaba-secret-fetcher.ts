/**
 * Reads one secret from Alibaba Cloud's KMS Secrets Manager on an ECS instance, for the master's boot
 * script: the RAM role's STS key from the metadata service in hardened mode (a session token first, as
 * the instances run with HttpTokens=required), then an ACS3-HMAC-SHA256 signed GetSecretValue to KMS's VPC
 * endpoint (reached from the cluster's VSwitches without a NAT gateway). The value goes to stdout as KMS
 * holds it: base64 for the binary munge key (what the munge key's pipe decodes), text for the agent's key.
 * The secret's name and the region come from the environment, never from the script's text, so no name
 * is ever parsed as code; no Alibaba CLI is installed and no key is in the user data.
 * NOWSCALE_ALIBABA_METADATA and NOWSCALE_ALIBABA_KMS_ENDPOINT exist for tests (the loopback simulator and
 * the metadata emulator of lib/providers/local/instance-endpoints).
 */
export const ALIBABA_SECRET_FETCHER = `
import { createHash, createHmac, randomUUID } from "node:crypto";
const env = process.env;
const meta = env.NOWSCALE_ALIBABA_METADATA || "http://100.100.100.200";
const endpoint = env.NOWSCALE_ALIBABA_KMS_ENDPOINT || "https://kms-vpc." + env.NOWSCALE_REGION + ".aliyuncs.com";
const ok = async (r, what) => { if (!r.ok) throw new Error(what + ": HTTP " + r.status); return r; };
const token = await (await ok(await fetch(meta + "/latest/api/token", { method: "PUT", headers: { "X-aliyun-ecs-metadata-token-ttl-seconds": "300" } }), "metadata token")).text();
const get = async (path) => ok(await fetch(meta + "/latest/meta-data/" + path, { headers: { "X-aliyun-ecs-metadata-token": token } }), "metadata " + path);
const role = (await (await get("ram/security-credentials/")).text()).trim().split("\\n")[0];
const c = await (await get("ram/security-credentials/" + role)).json();
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (x) => "%" + x.charCodeAt(0).toString(16).toUpperCase());
const sha = (s) => createHash("sha256").update(s).digest("hex");
const url = new URL(endpoint);
const query = "SecretName=" + enc(env.NOWSCALE_SECRET_NAME);
const headers = {
  host: url.host,
  "x-acs-action": "GetSecretValue",
  "x-acs-content-sha256": sha(""),
  "x-acs-date": new Date().toISOString().replace(/\\.\\d+Z$/, "Z"),
  "x-acs-security-token": c.SecurityToken,
  "x-acs-signature-nonce": randomUUID(),
  "x-acs-version": "2016-01-20",
};
const names = Object.keys(headers).sort();
const canonical = ["POST", "/", query, names.map((h) => h + ":" + headers[h].trim() + "\\n").join(""), names.join(";"), sha("")].join("\\n");
const signature = createHmac("sha256", c.AccessKeySecret).update("ACS3-HMAC-SHA256\\n" + sha(canonical)).digest("hex");
const { host: _host, ...sent } = headers;
const res = await fetch(url.origin + "/?" + query, { method: "POST", headers: { ...sent,
  Authorization: "ACS3-HMAC-SHA256 Credential=" + c.AccessKeyId + ",SignedHeaders=" + names.join(";") + ",Signature=" + signature } });
const answer = await res.json();
if (!res.ok || answer.SecretData === undefined) { console.error("KMS GetSecretValue: " + (answer.Code ?? res.status)); process.exit(1); }
process.stdout.write(answer.SecretData);
`;
