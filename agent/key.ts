import { readFile } from "node:fs/promises";
import { MIN_KEY_BYTES } from "../lib/ports/agent-signing.js";

/**
 * The HMAC key: the contents of `keyFile` (or NOWSCALE_AGENT_KEY_FILE), else NOWSCALE_AGENT_KEY, with
 * surrounding whitespace removed. Throws when neither is set or the key is shorter than 32 bytes.
 * The key is never logged: errors name where it was looked for, not what was found.
 */
export async function loadKey(
  keyFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Uint8Array> {
  const file = keyFile ?? env.NOWSCALE_AGENT_KEY_FILE;
  let text: string | undefined;
  let where: string;
  if (file) {
    where = `key file ${file}`;
    text = await readFile(file, "utf8");
  } else {
    where = "NOWSCALE_AGENT_KEY";
    text = env.NOWSCALE_AGENT_KEY;
  }
  if (text === undefined || text.trim() === "") {
    throw new Error("no signing key: give --key-file, NOWSCALE_AGENT_KEY_FILE or NOWSCALE_AGENT_KEY");
  }
  const key = Buffer.from(text.trim(), "utf8");
  if (key.length < MIN_KEY_BYTES)
    throw new Error(`the signing key from ${where} is shorter than ${MIN_KEY_BYTES} bytes`);
  return key;
}
