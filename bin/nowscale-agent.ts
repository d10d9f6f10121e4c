#!/usr/bin/env node
/**
 * `nowscale-agent`: runs the one-file agent bundle (`npm run build:agent`), the same file that is
 * copied to masters, so the installed command and the deployed agent cannot differ.
 */
const bundle = new URL("../agent/nowscale-agent.js", import.meta.url);
await import(bundle.href);
