import { alibabaHarness, awsHarness, fakeHarness, tencentHarness } from "./harnesses.js";
import { localHarness } from "./local-harness.js";
import { providerContract } from "./provider-contract.js";

providerContract("fake", fakeHarness);
providerContract("AWS EC2 (aws-sdk-client-mock)", awsHarness);
providerContract("Tencent CVM (SDK against a local CVM endpoint)", tencentHarness);
providerContract("Alibaba ECS (SDK against a local ECS endpoint)", alibabaHarness);
providerContract("local (namespace nodes in memory)", localHarness);
