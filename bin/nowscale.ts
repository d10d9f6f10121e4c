#!/usr/bin/env node
// The AWS SDK warns about Node 20 on the first client of every run (a notice about its releases after
// January 2027, nothing a user of this CLI can act on, and noise before every answer). It is emitted as a
// plain "Warning", so `--disable-warning` cannot name it; the SDK's own switch turns it off, here and in
// the processes this one starts (the local mode's supervisor inherits the environment).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { main } = await import("../lib/cli/program.js");
process.exitCode = await main(process.argv);
