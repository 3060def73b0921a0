#!/usr/bin/env node
import { reportFatal } from "@vigil/lifecycle";
import { runConsole } from "./run.js";

runConsole().catch((err: unknown) => {
  // Exit at once: a NATS client still trying to connect would keep the process alive.
  process.exit(reportFatal("vigil-console", err));
});
