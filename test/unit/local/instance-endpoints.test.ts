import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type InstanceIdentity,
  serveInstanceEndpoints,
} from "../../../lib/providers/local/instance-endpoints/index.js";
import { localMountNfs } from "../../../lib/providers/local/testbed-nodes.js";

const IDENTITY: InstanceIdentity = {
  cloud: "aws",
  instanceId: "ln-0123456789",
  instanceType: "local.c1m1",
  zone: "eu-west-3a",
  region: "eu-west-3",
  privateIp: "192.168.250.10",
};

/** Bad input to the instance endpoints is refused naming the field, before anything is made. */
describe("serveInstanceEndpoints input", () => {
  it.each([
    ["identity.instanceId", { instanceId: "a;rm -rf /" }],
    ["identity.region", { region: "$(id)" }],
    ["identity.zone", { zone: "" }],
    ["identity.privateIp", { privateIp: "10.0.0" }],
    ["identity.cloud", { cloud: "gcp" }],
    ["hopLimit", { hopLimit: 0 }],
  ])("refuses a bad %s and makes nothing", async (field, change) => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "nowscale-endpoints-unit-"));
    // Act
    const served = serveInstanceEndpoints(
      "nsu-none",
      { ...IDENTITY, ...change } as InstanceIdentity,
      [],
      [],
      {
        dir,
      },
    );
    // Assess
    await expect(served).rejects.toThrow(field);
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses a bucket name S3 would not take", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nowscale-endpoints-unit-"));
    await expect(
      serveInstanceEndpoints(
        "nsu-none",
        IDENTITY,
        [],
        [{ bucket: "Bad_Bucket", key: "k", body: Buffer.from("") }],
        {
          dir,
        },
      ),
    ).rejects.toThrow(/objects: invalid bucket/);
  });
});

describe("the local stand-in for mount.nfs", () => {
  it("maps only the local server's exports, and refuses unsafe roots", () => {
    // Act
    const script = localMountNfs("192.168.250.1", "/var/tmp/exports");
    // Assess
    expect(script).toContain(`if [ "$server" != '192.168.250.1' ]`);
    expect(script).toContain(`exec mount --bind '/var/tmp/exports'"$path" "$dir"`);
    expect(() => localMountNfs("192.168.250.1", "/var/tmp/../etc")).toThrow(/nfsExportRoot/);
    expect(() => localMountNfs("192.168.250.1", "/tmp/x'y")).toThrow(/nfsExportRoot/);
    expect(() => localMountNfs("host; reboot", "/tmp/x")).toThrow(/NFS server address/);
  });
});
