#!/usr/bin/env node
import { main } from "../lib/cli/program.js";

process.exitCode = await main(process.argv);
